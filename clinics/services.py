"""Writes for clinic set-up: catalogue rows (doctors, services, hours…) and staff memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _

from audit.services import audit_record
from clinics.models import Clinic, Membership
from clinics.tenancy import Role, clinics_with_role, forget_clinic_roles, portal_holder_id


def _clinic_of(instance: models.Model) -> Clinic | None:
    if isinstance(instance, Clinic):
        return instance
    return getattr(instance, "clinic", None)


def _editable(actor: Any, instance: models.Model) -> bool:
    """The actor may change this existing row (its model's TenantManager decides)."""
    manager: Any = type(instance)._default_manager
    return bool(manager.editable_by(actor).filter(pk=instance.pk).exists())


def catalogue_save(
    *,
    actor: Any,
    instance: models.Model,
    created: bool,
    changed: list[str] | None = None,
    m2m: dict[str, list[models.Model]] | None = None,
) -> models.Model:
    """Validate and save a set-up row (clinic, branch, hours, doctor, service…), with an audit row.

    The admin form has already limited choices to the actor's clinics; the model's
    own clean() checks cross-clinic references again here.
    """
    if not created and not _editable(actor, instance):
        raise PermissionDenied(_("Your role in this clinic does not allow this."))
    # The clinic the row is (now) in: for a change too, or a row could be moved into another clinic.
    clinic = _clinic_of(instance)
    policy = type(instance).tenancy  # type: ignore[attr-defined]  # every tenant model declares its Policy
    # A row the actor keeps for themselves (Policy.owner) needs only a role that views the model there.
    own_row = bool(policy.owner) and getattr(instance, f"{policy.owner}_id", None) == actor.pk
    roles = policy.view if own_row else policy.change
    if clinic is not None and not actor.is_superuser and clinic.pk not in clinics_with_role(actor, roles):
        raise PermissionDenied(_("Your role in this clinic does not allow this."))
    instance.full_clean(validate_unique=True)
    for name, related in (m2m or {}).items():
        if clinic is not None and any(getattr(obj, "clinic_id", clinic.pk) != clinic.pk for obj in related):
            raise ValidationError({name: _("A row of another clinic cannot be used here.")})
    with transaction.atomic():
        instance.save()
        for name, related in (m2m or {}).items():
            getattr(instance, name).set(related)
        audit_record(
            actor=actor,
            action=f"{instance._meta.model_name}.{'created' if created else 'changed'}",
            clinic=_clinic_of(instance),
            target=instance,
            data={"fields": list(changed or [])},
        )
    return instance


def catalogue_delete(*, actor: Any, instance: models.Model) -> None:
    if not _editable(actor, instance):
        raise PermissionDenied(_("Your role in this clinic does not allow this."))
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=f"{instance._meta.model_name}.deleted",
            clinic=_clinic_of(instance) if not isinstance(instance, Clinic) else None,
            data={"id": instance.pk, "str": str(instance)},
        )
        instance.delete()


def membership_grant_check(*, actor: Any, clinic: Clinic, role: str, username: str, password: str | None) -> None:
    """Everything membership_grant refuses, as field errors (the admin form shows them)."""
    if not actor.is_superuser and clinic.pk not in clinics_with_role(actor, Membership.tenancy.change):
        raise PermissionDenied(_("Only the clinic's owner can add staff."))
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": _("Enter a login.")})
    User = get_user_model()
    existing = User.objects.filter(username=username).first()
    if existing is None:
        if not password:
            raise ValidationError({"password": _("Set a password for the new staff account.")})
        try:
            validate_password(password, User(username=username))
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
    elif portal_holder_id(existing) is not None:
        raise ValidationError({"username": _("This login belongs to a patient's portal account.")})


def membership_grant(
    *,
    actor: Any,
    clinic: Clinic,
    role: str,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> Membership:
    """Give a person a role in a clinic, creating their staff account when it is new.

    Only the clinic's owner (or the platform) may do this; a membership makes the
    user `is_staff` so that they can open the admin.
    """
    membership_grant_check(actor=actor, clinic=clinic, role=role, username=username, password=password)
    User = get_user_model()
    username = username.strip()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            candidate = User(username=username, email=email, first_name=first_name, last_name=last_name)
            candidate.set_password(password)
            candidate.is_staff = True
            candidate.save()
            user = candidate
        elif not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        membership, created = Membership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
        if not created:
            membership.role, membership.is_active = role, True
            membership.save(update_fields=["role", "is_active"])
        audit_record(actor=actor, action="membership.granted", clinic=clinic, target=membership, data={"role": role, "user": username})
    forget_clinic_roles(user)
    return membership


def membership_update(*, actor: Any, membership: Membership, role: str, is_active: bool) -> Membership:
    if not Membership.objects.editable_by(actor).filter(pk=membership.pk).exists():
        raise PermissionDenied(_("Only the clinic's owner can change staff."))
    if membership.user_id == actor.pk and (role != Role.OWNER or not is_active) and not actor.is_superuser:
        raise ValidationError(_("You cannot demote or deactivate yourself; ask another owner."))
    with transaction.atomic():
        before = {"role": membership.role, "is_active": membership.is_active}
        membership.role, membership.is_active = role, is_active
        membership.save(update_fields=["role", "is_active"])
        audit_record(actor=actor, action="membership.changed", clinic=membership.clinic, target=membership, data={"before": before})
    forget_clinic_roles(membership.user)
    return membership
