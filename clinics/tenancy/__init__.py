"""The one place where "who may see what" is decided.

Every tenant model declares a `Policy`: the path from a row to its clinic, which
staff roles may view and change rows, and, for rows that belong to a doctor,
the path to that doctor (a doctor then sees only their own rows). Every admin
page (TenantAdmin), API view (TenantViewSetMixin + ClinicRolePermission),
WebSocket consumer and selector reaches rows through `visible_to(user)` /
`editable_by(user)` on the model's manager; nothing filters by clinic by hand.

This is the bottom of the apps (see the layer order in tests/platform/test_layers.py): it
imports no app's models at run time. Memberships and the portal holder are read through
the user's reverse relations (`user.memberships`, the `patient` one-to-one).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    OPERATOR = "operator", _("Operator")
    DOCTOR = "doctor", _("Doctor")


ALL_ROLES = frozenset(Role)
CLINIC_ADMINS = frozenset({Role.OWNER, Role.MANAGER})
FRONT_DESK = frozenset({Role.OWNER, Role.MANAGER, Role.OPERATOR})
NOBODY: frozenset[Role] = frozenset()


@dataclass(frozen=True)
class Policy:
    clinic: str = "clinic"
    view: frozenset[Role] = ALL_ROLES
    change: frozenset[Role] = CLINIC_ADMINS
    # Path to a clinics.Doctor: doctors then see only rows that are theirs.
    doctor: str | None = None
    # The clinic path crosses a to-many relation: filter through a subquery.
    to_many: bool = False
    # Path to a patients.Patient: a portal user then sees the rows of their family
    # (themselves and their dependants), narrowed by `patient_visible(user)`.
    patient: str | None = None
    patient_visible: Callable[[Any], Q] | None = None
    # Path to an accounts.User who keeps the row for themselves (a personal canned answer):
    # such a row is seen and changed by that user alone, in a clinic where their role may view
    # the model; rows without one follow `view` and `change` as usual.
    owner: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def clinic_roles(user: Any) -> dict[int, Role]:
    """{clinic_id: role} for the user's active memberships, cached on the user object."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, "_clinic_roles", None)
    if cached is None:
        memberships = user.memberships.filter(is_active=True, clinic__is_active=True)
        cached = {clinic_id: Role(role) for clinic_id, role in memberships.values_list("clinic_id", "role")}
        user._clinic_roles = cached
    return cached


def forget_clinic_roles(user: Any) -> None:
    """Drop the cache after memberships change within one request or test."""
    for cached in ("_clinic_roles", "_portal_holder_id", "_staff_clinics"):
        if hasattr(user, cached):
            delattr(user, cached)


def portal_holder_id(user: Any) -> int | None:
    """The pk of the user's own Patient (an account holder), cached on the user; None for staff."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_portal_holder_id"):
        # The model of the user's `patient` one-to-one (patients.Patient), reached without importing it.
        patients = user._meta.get_field("patient").related_model._default_manager
        user._portal_holder_id = patients.filter(user_id=user.pk).values_list("pk", flat=True).first()
    holder_id: int | None = user._portal_holder_id
    return holder_id


def is_staff_member(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False) or clinic_roles(user))


def clinics_with_role(user: Any, roles: frozenset[Role]) -> list[int]:
    return [clinic_id for clinic_id, role in clinic_roles(user).items() if role in roles]


def has_role(user: Any, clinic_id: int | None, roles: frozenset[Role]) -> bool:
    """The user holds one of `roles` in that clinic (a superuser holds them all)."""
    if getattr(user, "is_superuser", False):
        return True
    role = clinic_roles(user).get(clinic_id) if clinic_id is not None else None
    return role is not None and role in roles


def require_role(user: Any, clinic_id: int | None, roles: frozenset[Role], *, refusal: str | None = None) -> None:
    """PermissionDenied unless `has_role`; `refusal` is the sentence the person reads."""
    if not has_role(user, clinic_id, roles):
        raise PermissionDenied(refusal or _("Your role in this clinic does not allow this."))


def acts_for(user: Any, patient: Any) -> bool:
    """A portal user acts for their own record and their dependants' (the family they hold); staff for nobody."""
    holder_id = portal_holder_id(user)
    return holder_id is not None and holder_id == (patient.guardian_id or patient.pk)


def require_acts_for(user: Any, patient: Any, *, refusal: str | None = None) -> None:
    """PermissionDenied unless `acts_for`; `refusal` is the sentence the person reads."""
    if not acts_for(user, patient):
        raise PermissionDenied(refusal or _("You can act only for yourself and your family."))


def visible_or_404(model: type[models.Model], user: Any, **lookup: Any) -> Any:
    """The row `lookup` names if `user` may see it, else Http404: another tenant's row looks like no row."""
    try:
        return model._default_manager.visible_to(user).get(**lookup)  # type: ignore[attr-defined]
    except model.DoesNotExist:  # type: ignore[attr-defined]
        raise Http404(_("Not found.")) from None


def staff_can_view(user: Any, obj: models.Model) -> bool:
    """What `visible_to(user).filter(pk=obj.pk).exists()` answers for a staff user, without the query.

    Decided by the same Policy from the roles cached on the user and the loaded row (its
    clinic, and its doctor's account when the user is a doctor there). For paths run on
    every message (messaging.services). Portal users and to-many policies are not covered:
    ask visible_to for those.
    """
    policy = policy_of(obj)
    if policy.to_many:
        raise ValueError("staff_can_view does not follow to-many paths; use visible_to")
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    *through, last = policy.clinic.split("__")
    holder = _follow(obj, "__".join(through)) if through else obj
    clinic_id = getattr(holder, f"{last}_id", None) if holder is not None else None
    role = clinic_roles(user).get(clinic_id) if clinic_id is not None else None
    if role is None or role not in policy.view:
        return False
    if policy.owner and _follow(obj, f"{policy.owner}_id") not in (None, user.pk):
        return False
    if role == Role.DOCTOR and policy.doctor:
        doctor = _follow(obj, policy.doctor)
        return doctor is not None and doctor.user_id == user.pk
    return True


def policy_of(model: type[models.Model] | models.Model) -> Policy:
    """The Policy a tenant model declares as its `tenancy` attribute."""
    policy: Policy = model.tenancy  # type: ignore[union-attr]
    return policy


def _follow(obj: models.Model, path: str) -> Any:
    for name in path.split("__"):
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


class TenantQuerySet(models.QuerySet[Any]):
    """QuerySet that knows its model's Policy."""

    @property
    def policy(self) -> Policy:
        return policy_of(self.model)

    def _scoped(self, user: Any, roles: frozenset[Role]) -> TenantQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_superuser:
            return self.all()
        policy = self.policy
        roles_by_clinic = clinic_roles(user)
        pieces: list[Q] = []
        # A doctor sees every row of a model without a doctor path, only own rows otherwise.
        full = [c for c, r in roles_by_clinic.items() if r in roles and not (r == Role.DOCTOR and policy.doctor)]
        if full:
            pieces.append(Q(**{f"{policy.clinic}__in": full}))
        if policy.doctor and Role.DOCTOR in roles:
            own = [c for c, r in roles_by_clinic.items() if r == Role.DOCTOR]
            if own:
                pieces.append(Q(**{f"{policy.clinic}__in": own, f"{policy.doctor}__user": user}))
        if policy.owner:
            pieces = [piece & Q(**{f"{policy.owner}__isnull": True}) for piece in pieces]
            keeps_own = [c for c, r in roles_by_clinic.items() if r in policy.view]
            if keeps_own:
                pieces.append(Q(**{f"{policy.clinic}__in": keeps_own, policy.owner: user}))
        if not pieces:
            return self._patient_scoped(user) if roles is policy.view else self.none()
        condition = reduce(operator.or_, pieces)
        if policy.to_many:
            return self.filter(pk__in=self.model._base_manager.filter(condition).values("pk"))
        return self.filter(condition)

    def _patient_scoped(self, user: Any) -> TenantQuerySet:
        """A portal user's view: rows about themselves or a dependant of theirs."""
        policy = self.policy
        holder_id = portal_holder_id(user) if policy.patient else None
        if holder_id is None:
            return self.none()
        condition = Q(**{f"{policy.patient}_id": holder_id}) | Q(**{f"{policy.patient}__guardian_id": holder_id})
        if policy.patient_visible is not None:
            condition &= policy.patient_visible(user)
        return self.filter(condition)

    def visible_to(self, user: Any) -> TenantQuerySet:
        return self._scoped(user, self.policy.view)

    def editable_by(self, user: Any) -> TenantQuerySet:
        return self._scoped(user, self.policy.change)


TenantManager = models.Manager.from_queryset(TenantQuerySet)


def can_view_any(user: Any, model: type[models.Model]) -> bool:
    """Some row of `model` may be visible: a role that views it, or a portal user where the model has a patient path."""
    if user.is_superuser or clinics_with_role(user, policy_of(model).view):
        return True
    return bool(policy_of(model).patient and portal_holder_id(user) is not None)


def can_change_any(user: Any, model: type[models.Model]) -> bool:
    return bool(user.is_superuser or clinics_with_role(user, _creating_roles(model)))


def _creating_roles(model: type[models.Model]) -> frozenset[Role]:
    """Roles that may create a row: those that change it, and with an owner path everyone who views it (a row of their own)."""
    policy = policy_of(model)
    return policy.change | policy.view if policy.owner else policy.change


def clinics_editable_by(user: Any, model: type[models.Model], clinics: models.QuerySet[Any]) -> models.QuerySet[Any]:
    """`clinics` (the form field's Clinic rows) narrowed to those where `user` may create rows of `model`."""
    if user.is_superuser:
        return clinics
    return clinics.filter(pk__in=clinics_with_role(user, _creating_roles(model)))
