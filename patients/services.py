"""Writes for patients: sign-in, profile and contact changes, family, consent, clinic contacts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.destinations import Destination
from accounts.models import LoginCode
from accounts.services import IssuedCode, login_code_issue, login_code_redeem
from audit.services import audit_record
from clinics.models import Clinic, Membership, Tag
from clinics.tenancy import FRONT_DESK
from patients.models import ConsentDocument, ConsentRecord, Contact, ContactChange, Patient
from patients.selectors import consent_current_document, consent_is_given

User = get_user_model()


class ConsentRequired(Exception):
    """The patient has not accepted (or has withdrawn) the clinic's consent."""

    def __init__(self, clinic: Clinic):
        super().__init__(
            _("Before writing to or booking with %(clinic)s, please accept its personal data consent.") % {"clinic": clinic.name}
        )
        self.clinic = clinic


class ConsentOutdated(Exception):
    """The patient accepted a text that is no longer the current one."""


@dataclass(frozen=True)
class Attribution:
    """Where a contact came from: channel, UTM tags, referring page."""

    source_channel: str = Contact.Source.WEB
    utm: dict[str, str] = field(default_factory=dict)
    referrer: str = ""

    UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

    @classmethod
    def from_query(cls, query: Any, *, referrer: str = "", source_channel: str = Contact.Source.WEB) -> Attribution:
        return cls(
            source_channel=source_channel,
            utm={key: str(query.get(key, ""))[:100] for key in cls.UTM_KEYS if query.get(key)},
            referrer=(referrer or "")[:500],
        )


# --- Sign-in -------------------------------------------------------------------------

# Sends an issued code to the person: the outbox's code_notify (urgent, the code only in the cache),
# set once by NotificationsConfig.ready(). The outbox is above patients (it reads consent and family),
# so patients names it only through this one explicit hook.
CodeSender = Callable[..., object]
_code_senders: list[CodeSender] = []


def use_code_sender(sender: CodeSender) -> None:
    _code_senders[:] = [sender]


def _code_issue_and_send(*, destination: Destination, purpose: str, ip: str | None, user: Any = None) -> IssuedCode:
    """Issue a code and send it in the same transaction: a code that cannot be queued is not issued."""
    if not _code_senders:
        raise RuntimeError("No code sender: notifications registers one in NotificationsConfig.ready()")
    with transaction.atomic():
        issued = login_code_issue(destination=destination, purpose=purpose, ip=ip, user=user)
        _code_senders[0](login_code=issued.login_code, code=issued.code)
    return issued


def portal_code_request(*, destination: Destination, ip: str | None) -> IssuedCode:
    return _code_issue_and_send(destination=destination, purpose=LoginCode.Purpose.LOGIN, ip=ip)


def portal_sign_in(*, destination: Destination, code: str, ip: str | None = None) -> tuple[Patient, bool]:
    """Spend the code, then find the account holder with that phone/e-mail or create one.

    Returns (patient, created). The code is redeemed in its own transaction first so
    that a wrong attempt is counted even though we raise.
    """
    login_code_redeem(destination=destination, code=code, purpose=LoginCode.Purpose.LOGIN)
    lookup = {"phone": destination.value} if destination.is_phone else {"email": destination.value}
    with transaction.atomic():
        patient = Patient.objects.select_related("user").filter(guardian__isnull=True, **lookup).first()
        if patient is not None:
            if patient.user_id is None:
                # A person a clinic registered before they used the portal: give them an account now.
                patient.user = _new_portal_user()
                patient.save(update_fields=["user"])
            return patient, False
        patient = Patient.objects.create(user=_new_portal_user(), **lookup)
        audit_record(actor=patient.user, action="patient.signed_up", patient=patient, target=patient, ip=ip)
    return patient, True


def _new_portal_user() -> Any:
    user = User(username=f"patient-{uuid.uuid4().hex[:20]}")
    user.set_unusable_password()
    user.save()
    return user


# --- Profile and contact changes ------------------------------------------------------


def patient_update_profile(*, patient: Patient, actor: Any, full_name: str, birth_date: date | None) -> Patient:
    full_name = (full_name or "").strip()
    if not full_name:
        raise ValidationError({"full_name": _("Enter your name.")})
    if birth_date and birth_date > date.today():
        raise ValidationError({"birth_date": _("Date of birth cannot be in the future.")})
    with transaction.atomic():
        before = {"full_name": patient.full_name, "birth_date": str(patient.birth_date or "")}
        patient.full_name = full_name
        patient.birth_date = birth_date
        patient.save(update_fields=["full_name", "birth_date"])
        audit_record(actor=actor, action="patient.profile_updated", patient=patient, target=patient, data={"before": before})
    return patient


def _ensure_contact_free(*, patient: Patient, destination: Destination) -> None:
    field_name = "phone" if destination.is_phone else "email"
    if getattr(patient, field_name) and str(getattr(patient, field_name)) == destination.value:
        raise ValidationError({"destination": _("This is already your current contact.")})
    taken = Patient.objects.filter(guardian__isnull=True, **{field_name: destination.value}).exclude(pk=patient.pk)
    if taken.exists():
        raise ValidationError({"destination": _("This phone or e-mail is already used by another account.")})


def patient_contact_change_request(*, patient: Patient, destination: Destination, ip: str | None) -> IssuedCode:
    """Send a code to the new phone/e-mail; the change happens when it comes back."""
    _ensure_contact_free(patient=patient, destination=destination)
    return _code_issue_and_send(destination=destination, purpose=LoginCode.Purpose.CONTACT_CHANGE, ip=ip, user=patient.user)


def patient_contact_change_confirm(*, patient: Patient, destination: Destination, code: str, ip: str | None = None) -> Patient:
    """Switch the patient to the proven phone/e-mail, keeping the old one in the history.

    The person, their clinic contacts and threads all hang off the Patient row,
    so nothing else needs to move.
    """
    _ensure_contact_free(patient=patient, destination=destination)
    login_code_redeem(destination=destination, code=code, purpose=LoginCode.Purpose.CONTACT_CHANGE, user=patient.user)
    field_name = "phone" if destination.is_phone else "email"
    try:
        with transaction.atomic():
            locked: Patient = Patient.objects.select_for_update().get(pk=patient.pk)
            old = getattr(locked, field_name)
            old = old.as_e164 if hasattr(old, "as_e164") else (old or "")
            setattr(locked, field_name, destination.value)
            locked.save(update_fields=[field_name])
            ContactChange.objects.create(
                patient=locked, field=field_name, old_value=old, new_value=destination.value, changed_by=patient.user
            )
            audit_record(
                actor=patient.user,
                action=f"patient.{field_name}_changed",
                patient=locked,
                target=locked,
                data={"old": old, "new": destination.value},
                ip=ip,
            )
    except IntegrityError:
        # Someone registered the same value between our check and the write.
        raise ValidationError({"destination": _("This phone or e-mail is already used by another account.")}) from None
    return locked


# --- Family ----------------------------------------------------------------------------


def dependant_add(*, guardian: Patient, full_name: str, birth_date: date | None, relation: str) -> Patient:
    if guardian.guardian_id is not None:
        raise ValidationError(_("Only an account holder can add family members."))
    full_name = (full_name or "").strip()
    if not full_name:
        raise ValidationError({"full_name": _("Enter the family member's name.")})
    if relation not in Patient.Relation.values or relation == Patient.Relation.SELF:
        raise ValidationError({"relation": _("Choose who this person is to you.")})
    if birth_date and birth_date > date.today():
        raise ValidationError({"birth_date": _("Date of birth cannot be in the future.")})
    with transaction.atomic():
        dependant = Patient.objects.create(guardian=guardian, full_name=full_name, birth_date=birth_date, relation=relation)
        audit_record(actor=guardian.user, action="patient.dependant_added", patient=dependant, target=dependant)
    return dependant


def dependant_update(*, dependant: Patient, full_name: str, birth_date: date | None, relation: str) -> Patient:
    full_name = (full_name or "").strip()
    if not full_name:
        raise ValidationError({"full_name": _("Enter the family member's name.")})
    if relation not in Patient.Relation.values or relation == Patient.Relation.SELF:
        raise ValidationError({"relation": _("Choose who this person is to you.")})
    with transaction.atomic():
        dependant.full_name, dependant.birth_date, dependant.relation = full_name, birth_date, relation
        dependant.save(update_fields=["full_name", "birth_date", "relation"])
        audit_record(actor=dependant.account_holder.user, action="patient.dependant_updated", patient=dependant, target=dependant)
    return dependant


def dependant_remove(*, dependant: Patient) -> None:
    """Remove a family member who has no history with any clinic; otherwise refuse."""
    with transaction.atomic():
        if Contact.objects.filter(patient=dependant).exists():
            raise ValidationError(_("This family member already has a history with a clinic and cannot be removed."))
        audit_record(
            actor=dependant.account_holder.user, action="patient.dependant_removed", data={"id": dependant.pk, "name": dependant.full_name}
        )
        dependant.delete()


# --- Consent and clinic contacts --------------------------------------------------------------


def consent_grant(
    *,
    patient: Patient,
    clinic: Clinic,
    document_version: int,
    ip: str | None,
    user_agent: str,
    channel: str = ConsentRecord.Channel.WEB,
) -> ConsentRecord:
    """Record that the account holder accepted this exact version of the clinic's text."""
    holder = patient.account_holder
    document = consent_current_document(clinic=clinic)
    if document is None:
        raise ValidationError(_("This clinic has not published its consent text yet."))
    if document.version != document_version:
        raise ConsentOutdated(
            _("The consent text has been updated (version %(version)s). Please read the new version.") % {"version": document.version}
        )
    with transaction.atomic():
        record = ConsentRecord.objects.create(
            patient=holder,
            clinic=clinic,
            document=document,
            document_version=document.version,
            text_sha256=document.text_sha256,
            action=ConsentRecord.Action.GRANTED,
            ip=ip,
            user_agent=(user_agent or "")[:400],
            channel=channel,
        )
        audit_record(actor=holder.user, action="consent.granted", clinic=clinic, patient=holder, target=record, ip=ip)
    return record


def consent_withdraw(
    *, patient: Patient, clinic: Clinic, ip: str | None, user_agent: str, channel: str = ConsentRecord.Channel.WEB
) -> ConsentRecord:
    """Stop processing: later messages, bookings and notifications are refused. History is kept."""
    holder = patient.account_holder
    with transaction.atomic():
        last = ConsentRecord.objects.select_for_update().filter(patient=holder, clinic=clinic).order_by("-at", "-pk").first()
        if last is None or last.action != ConsentRecord.Action.GRANTED:
            raise ValidationError(_("There is no consent to withdraw."))
        record = ConsentRecord.objects.create(
            patient=holder,
            clinic=clinic,
            document=last.document,
            document_version=last.document_version,
            text_sha256=last.text_sha256,
            action=ConsentRecord.Action.WITHDRAWN,
            ip=ip,
            user_agent=(user_agent or "")[:400],
            channel=channel,
        )
        audit_record(actor=holder.user, action="consent.withdrawn", clinic=clinic, patient=holder, target=record, ip=ip)
    return record


def consent_require(*, patient: Patient, clinic: Clinic) -> None:
    """Raise ConsentRequired unless the person (or their guardian) consented to the current text."""
    if not consent_is_given(patient=patient, clinic=clinic):
        raise ConsentRequired(clinic)


def contact_start(*, patient: Patient, clinic: Clinic, attribution: Attribution | None = None) -> tuple[Contact, bool]:
    """Make the person a contact of the clinic (idempotent). Needs consent.

    Attribution is kept from the first contact only: that is the ad that brought them.
    """
    consent_require(patient=patient, clinic=clinic)
    attribution = attribution or Attribution()
    with transaction.atomic():
        contact, created = Contact.objects.get_or_create(
            clinic=clinic,
            patient=patient,
            defaults={"source_channel": attribution.source_channel, "referrer": attribution.referrer, **attribution.utm},
        )
        if created:
            audit_record(actor=patient.account_holder.user, action="contact.started", clinic=clinic, patient=patient, target=contact)
    return contact, created


def clinic_join(
    *,
    patient: Patient,
    clinic: Clinic,
    document_version: int,
    attribution: Attribution | None,
    ip: str | None,
    user_agent: str,
    channel: str = ConsentRecord.Channel.WEB,
) -> Contact:
    """The portal's 'I agree' button: accept the consent and become the clinic's contact, together."""
    with transaction.atomic():
        consent_grant(patient=patient, clinic=clinic, document_version=document_version, ip=ip, user_agent=user_agent, channel=channel)
        contact, _created = contact_start(patient=patient, clinic=clinic, attribution=attribution)
    return contact


def contact_update(
    *,
    actor: Any,
    contact: Contact,
    notes: str,
    tags: list[Tag],
    assigned_operator: Any | None,
) -> Contact:
    """Staff edit a contact card. Tags and the operator must belong to the same clinic."""
    if any(tag.clinic_id != contact.clinic_id for tag in tags):
        raise ValidationError({"tags": _("A tag of another clinic cannot be used here.")})
    if (
        assigned_operator is not None
        and not Membership.objects.filter(user=assigned_operator, clinic_id=contact.clinic_id, role__in=FRONT_DESK, is_active=True).exists()
    ):
        raise ValidationError({"assigned_operator": _("This person does not work at the front desk of this clinic.")})
    with transaction.atomic():
        before = {"notes": contact.notes, "assigned_operator": contact.assigned_operator_id}
        contact.notes = notes
        contact.assigned_operator = assigned_operator
        contact.save(update_fields=["notes", "assigned_operator"])
        contact.tags.set(tags)
        audit_record(
            actor=actor, action="contact.updated", clinic=contact.clinic, patient=contact.patient, target=contact, data={"before": before}
        )
    return contact


def consent_document_publish(*, actor: Any, clinic: Clinic, title: str, text: str) -> ConsentDocument:
    """Publish a new version; every patient will be asked to accept it again."""
    text = (text or "").strip()
    if len(text) < 50:
        raise ValidationError({"text": _("The consent text is too short to be a real document.")})
    with transaction.atomic():
        Clinic.objects.select_for_update().filter(pk=clinic.pk).first()  # serialise version numbers
        last = ConsentDocument.objects.filter(clinic=clinic).order_by("-version").values_list("version", flat=True).first()
        document = ConsentDocument.objects.create(clinic=clinic, version=(last or 0) + 1, title=title.strip(), text=text)
        audit_record(actor=actor, action="consent.published", clinic=clinic, target=document, data={"version": document.version})
    return document


# --- Merging two cards of one person -------------------------------------------------


def contacts_merge(*, actor: Any, keep: Contact, merge: Contact) -> Contact:
    """Two cards of one person in one clinic become one: what is filed under `merge` (threads...), its tags and notes move to `keep`.

    The rows that reference a card are found through the model's reverse relations, so an app
    that files something under a card (messaging's threads) needs no code here. The people
    (portal accounts) stay as they are: each still sees only their own threads.
    """
    if keep.pk == merge.pk:
        raise ValidationError({"merge": _("Choose two different contacts.")}, code="same")
    if keep.clinic_id != merge.clinic_id:
        raise ValidationError({"merge": _("Contacts of different clinics cannot be merged.")}, code="clinic")
    if not Contact.objects.editable_by(actor).filter(pk__in=[keep.pk, merge.pk]).count() == 2:
        raise PermissionDenied(_("Your role in this clinic does not allow this."))
    with transaction.atomic():
        keep, merge = (Contact.objects.select_for_update().get(pk=pk) for pk in (keep.pk, merge.pk))
        if keep.merged_into_id or merge.merged_into_id:
            raise ValidationError({"merge": _("One of the contacts has already been merged.")}, code="merged")
        moved = _repoint_filed_rows(source=merge, target=keep)
        keep.tags.add(*merge.tags.all())
        if merge.notes:
            keep.notes = f"{keep.notes}\n\n{merge.notes}".strip()[:5000]
        keep.assigned_operator_id = keep.assigned_operator_id or merge.assigned_operator_id
        keep.save(update_fields=["notes", "assigned_operator"])
        merge.merged_into = keep
        merge.save(update_fields=["merged_into"])
        audit_record(
            actor=actor,
            action="contact.merged",
            clinic=keep.clinic,
            patient=keep.patient,
            target=keep,
            data={"merged": merge.pk, "threads_moved": moved.get("threads", 0)},
        )
    return keep


def _repoint_filed_rows(*, source: Contact, target: Contact) -> dict[str, int]:
    """Every row of another model with a foreign key to `source` now points to `target`; counts by relation name."""
    moved: dict[str, int] = {}
    for relation in Contact._meta.related_objects:
        if not relation.one_to_many or relation.related_model is Contact:  # merged cards keep pointing at their card
            continue
        field = relation.field
        moved[relation.get_accessor_name() or field.name] = field.model._base_manager.filter(**{field.name: source}).update(
            **{field.name: target}
        )
    return moved
