"""Reads for promotions: the audience, the reach figures, and what a patient has not opened yet."""

from __future__ import annotations

from datetime import datetime, time

from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from appointments.models import Appointment
from notifications.models import Delivery
from patients.models import Patient, PatientInClinic
from promotions.models import Promotion, Receipt


def promotion_audience(*, promotion: Promotion) -> QuerySet[Patient]:
    """Account holders reached: they (or a dependant of theirs) wrote to the clinic and match every filter set.

    One person per family: a parent of two children who are contacts is reached once.
    """
    clinic = promotion.clinic
    contacts = PatientInClinic.objects.filter(clinic=clinic, merged_into__isnull=True)
    tag_ids = list(promotion.tags.values_list("pk", flat=True))
    if tag_ids:
        contacts = contacts.filter(tags__in=tag_ids)
    people = Patient.objects.filter(pk__in=contacts.values("patient_id"))
    held = Appointment.objects.filter(clinic=clinic, status=Appointment.Status.COMPLETED)
    if promotion.doctor_id:
        people = people.filter(Exists(held.filter(patient=OuterRef("pk"), doctor_id=promotion.doctor_id)))
    if promotion.last_visit_before or promotion.last_visit_after:
        last = people.annotate(
            last_visit=Max("visits__starts_at", filter=Q(visits__clinic=clinic, visits__status=Appointment.Status.COMPLETED))
        )
        if promotion.last_visit_before:
            last = last.filter(last_visit__lt=datetime.combine(promotion.last_visit_before, time.min, tzinfo=clinic.tz))
        if promotion.last_visit_after:
            last = last.filter(last_visit__gte=datetime.combine(promotion.last_visit_after, time.min, tzinfo=clinic.tz))
        people = Patient.objects.filter(pk__in=last.values("pk"))
    holder_ids = {guardian_id or pk for pk, guardian_id in people.values_list("pk", "guardian_id")}
    return Patient.objects.filter(pk__in=holder_ids).select_related("user")


def promotion_reach(*, promotion: Promotion) -> dict[str, int]:
    """What the manager sees: reached, sent, delivered, opened, booked after (a visit booked in the clinic once reached)."""
    receipts = Receipt.objects.filter(promotion=promotion)
    deliveries = Delivery.objects.filter(notification__promotion=promotion)
    booked = receipts.filter(
        Exists(
            Appointment.objects.filter(clinic_id=promotion.clinic_id, created_at__gte=OuterRef("created_at")).filter(
                Q(patient=OuterRef("patient")) | Q(patient__guardian=OuterRef("patient"))
            )
        )
    )
    return {
        "reached": receipts.count(),
        "sent": deliveries.filter(status__in=(Delivery.Status.SENT, Delivery.Status.DELIVERED)).count(),
        "delivered": deliveries.filter(status=Delivery.Status.DELIVERED).count(),
        "opened": receipts.filter(opened_at__isnull=False).count(),
        "booked_after": booked.count(),
    }


def unopened_by_clinic(*, patient: Patient) -> dict[int, Promotion]:
    """{clinic_id: promotion} for running promotions the person has not opened: their clinics stay highlighted."""
    today = timezone.localdate()
    receipts = (
        Receipt.objects.filter(patient=patient.account_holder, opened_at__isnull=True, promotion__valid_until__gte=today)
        .select_related("promotion")
        .order_by("created_at")
    )
    return {r.promotion.clinic_id: r.promotion for r in receipts}


def promotion_for_patient(*, patient: Patient, promotion_id: int) -> Promotion | None:
    return (
        Promotion.objects.filter(pk=promotion_id, receipts__patient=patient.account_holder, status=Promotion.Status.LAUNCHED)
        .select_related("clinic")
        .first()
    )
