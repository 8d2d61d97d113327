"""Reads for patient screens (portal and staff)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from clinics.models import Clinic
from patients.models import ConsentDocument, ConsentRecord, Contact, ContactChange, Patient


def patient_for_user(user: Any) -> Patient | None:
    """The portal profile of a signed-in user, or None for staff and anonymous users."""
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        patient: Patient = user.patient
    except Patient.DoesNotExist:
        return None
    return patient


def consent_current_document(*, clinic: Clinic) -> ConsentDocument | None:
    return ConsentDocument.objects.filter(clinic=clinic).order_by("-version").first()


def consent_given_pairs(*, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Of (account holder id, clinic id) pairs, those with consent given to the clinic's current text (consent_is_given, in bulk).

    Two queries whatever the number of pairs: the notification dispatch checks hundreds at once.
    """
    if not pairs:
        return set()
    patient_ids = {p for p, _c in pairs}
    clinic_ids = {c for _p, c in pairs}
    current: dict[int, int] = {}
    for clinic_id, document_id in (
        ConsentDocument.objects.filter(clinic_id__in=clinic_ids).order_by("clinic_id", "-version").values_list("clinic_id", "pk")
    ):
        current.setdefault(clinic_id, document_id)
    last: dict[tuple[int, int], tuple[str, int]] = {}
    records = ConsentRecord.objects.filter(patient_id__in=patient_ids, clinic_id__in=clinic_ids).order_by(
        "patient_id", "clinic_id", "-at", "-pk"
    )
    for patient_id, clinic_id, action, document_id in records.values_list("patient_id", "clinic_id", "action", "document_id"):
        last.setdefault((patient_id, clinic_id), (action, document_id))
    return {
        pair for pair in pairs if pair in last and last[pair][0] == ConsentRecord.Action.GRANTED and last[pair][1] == current.get(pair[1])
    }


def consent_is_given(*, patient: Patient, clinic: Clinic) -> bool:
    """Granted, not withdrawn since, and for the text currently published. One query: it runs before every message."""
    current = ConsentDocument.objects.filter(clinic=clinic).order_by("-version").values("pk")[:1]
    last = (
        ConsentRecord.objects.filter(patient=patient.account_holder, clinic=clinic)
        .order_by("-at", "-pk")
        .annotate(current_document=Subquery(current))
        .values("action", "document_id", "current_document")
        .first()
    )
    return bool(last) and last["action"] == ConsentRecord.Action.GRANTED and last["document_id"] == last["current_document"]


def consent_given_sql() -> str:
    """consent_is_given as an SQL expression, for a statement that checks consent and writes in one round trip.

    The same rule: the account holder's last record for the clinic is a grant of the text
    currently published. Parameters `%(patient)s` (anyone of the family) and `%(clinic)s`.
    Used by messaging.services.store; tests compare the two on every consent state.
    """
    record, document, patient = ConsentRecord._meta.db_table, ConsentDocument._meta.db_table, Patient._meta.db_table
    return f"""COALESCE((
        SELECT r.action = '{ConsentRecord.Action.GRANTED.value}' AND r.document_id = (
            SELECT d.id FROM {document} d WHERE d.clinic_id = r.clinic_id ORDER BY d.version DESC LIMIT 1
        )
        FROM {record} r
        WHERE r.clinic_id = %(clinic)s
          AND r.patient_id = (SELECT COALESCE(p.guardian_id, p.id) FROM {patient} p WHERE p.id = %(patient)s)
        ORDER BY r.at DESC, r.id DESC
        LIMIT 1
    ), false)"""


def patient_family(*, patient: Patient) -> list[Patient]:
    """The account holder first, then their dependants: the people they may act for."""
    holder = patient.account_holder
    return [holder, *holder.dependants.order_by("full_name", "pk")]


def patient_dependant_get(*, guardian: Patient, dependant_id: int) -> Patient:
    """A dependant of this guardian, or Patient.DoesNotExist (never someone else's)."""
    return Patient.objects.get(pk=dependant_id, guardian=guardian)


def patient_clinics(*, patient: Patient) -> QuerySet[Contact]:
    """The clinics this person (and their family) is a contact of, for the portal home.

    `consent_action` is the account holder's last consent action with that clinic, so the page
    offers withdrawal only where consent stands and a way back where it was withdrawn.
    """
    holder = patient.account_holder
    family_ids = [member.pk for member in patient_family(patient=patient)]
    last_action = ConsentRecord.objects.filter(patient=holder, clinic=OuterRef("clinic")).order_by("-at", "-pk").values("action")[:1]
    contacts: QuerySet[Contact] = (
        Contact.objects.filter(patient_id__in=family_ids)
        .annotate(consent_action=Subquery(last_action))
        .select_related("clinic", "patient")
        .order_by("clinic__name", "patient__full_name")
    )
    return contacts


def patient_sees_zones(*, patient: Patient, clinic: Clinic | None = None) -> bool:
    """Whether this person's times carry their zone (clinics.zones): their family deals with clinics of
    more than one zone, counting `clinic` (the one being booked) too. One query."""
    family = Q(patient=patient.account_holder) | Q(patient__guardian=patient.account_holder)
    zones = set(Contact.objects.filter(family).values_list("clinic__time_zone", flat=True).distinct())
    if clinic is not None:
        zones.add(clinic.time_zone)
    return len(zones) > 1


def patient_export(*, patient: Patient) -> dict[str, Any]:
    """Everything we hold about the account holder and their family (152-FZ access right)."""
    holder = patient.account_holder
    people = patient_family(patient=holder)

    def person(p: Patient) -> dict[str, Any]:
        return {
            "id": p.pk,
            "full_name": p.full_name,
            "relation": p.relation,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "phone": p.phone.as_e164 if p.phone else None,
            "email": p.email,
            "created_at": p.created_at.isoformat(),
        }

    contacts = Contact.objects.filter(patient__in=people).select_related("clinic", "patient").prefetch_related("tags")
    return {
        "format": "clinic-crm-export/1",
        "account_holder": person(holder),
        "family": [person(p) for p in people[1:]],
        "contact_history": [
            {"field": c.field, "old": c.old_value, "new": c.new_value, "changed_at": c.changed_at.isoformat()}
            for c in ContactChange.objects.filter(patient__in=people)
        ],
        "clinics": [
            {
                "clinic": c.clinic.name,
                "person_id": c.patient_id,
                "first_contact_at": c.first_contact_at.isoformat(),
                "source_channel": c.source_channel,
                "utm": {k: getattr(c, k) for k in ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term") if getattr(c, k)},
            }
            for c in contacts
        ],
        "consents": [
            {
                "clinic": r.clinic.name,
                "action": r.action,
                "text_version": r.document_version,
                "text_sha256": r.text_sha256,
                "at": r.at.isoformat(),
                "ip": r.ip,
                "channel": r.channel,
            }
            for r in ConsentRecord.objects.filter(patient=holder).select_related("clinic").order_by("at", "pk")
        ],
    }


@dataclass
class PatientCard:
    """What the inbox shows beside a thread; each part only if the user's role may see it."""

    patient: Patient
    phone: str
    email: str
    contact: Contact | None  # the clinic's card the thread is filed under (front desk only)
    contacts: list[Contact]  # the patient's cards in the clinics the user works in
    contact_changes: list[ContactChange]
    past_visits: list[Any]
    next_visits: list[Any]


CARD_VISITS = 5  # past and next visits the card lists, each


def patient_card_visits(*, user: Any, patient: Patient, clinic_id: int, limit: int = CARD_VISITS) -> tuple[list[Any], list[Any]]:
    """(past, next) visits of the patient in one clinic that the user may see (a doctor: their own).

    Read through the patient's reverse relation (`Patient.visits`, declared by the visit model), so
    that this app needs nothing from the booking app above it; the visit's own tenancy policy filters.
    """
    visits = patient.visits.visible_to(user).filter(clinic_id=clinic_id).select_related("doctor", "service")
    now = timezone.now()
    upcoming = list(visits.filter(status__in=list(visits.model.UPCOMING), starts_at__gte=now).order_by("starts_at")[:limit])
    past = list(visits.filter(starts_at__lt=now).order_by("-starts_at")[:limit])
    return past, upcoming


def patient_card(*, user: Any, patient: Patient, clinic_id: int, contact_id: int | None) -> PatientCard:
    """The patient card beside a conversation. Contacts and their history follow their own policies (front desk)."""
    holder = patient.guardian if patient.guardian_id else None
    phone = patient.phone or (holder.phone if holder else None)
    email = patient.email or (holder.email if holder else None)
    contacts = list(
        Contact.objects.visible_to(user)
        .filter(patient=patient, merged_into__isnull=True)
        .select_related("clinic")
        .prefetch_related("tags")
        .order_by("clinic__name")
    )
    changes = list(ContactChange.objects.visible_to(user).filter(patient=patient).order_by("-changed_at", "-pk")[:10])
    past, upcoming = patient_card_visits(user=user, patient=patient, clinic_id=clinic_id)
    return PatientCard(
        patient=patient,
        phone=phone.as_international if phone else "",
        email=email or "",
        contact=next((c for c in contacts if c.pk == contact_id), None),
        contacts=contacts,
        contact_changes=changes,
        past_visits=past,
        next_visits=upcoming,
    )
