"""Reads for the portal's notification page, and the visit a patient's SMS reply is about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from notifications.models import Delivery, Notification, PersonalReminder, Preference


def preference_for(*, user: Any) -> Preference:
    """The person's choices, or the defaults (every channel) when they never chose."""
    return Preference.objects.filter(user=user).first() or Preference(user=user)


def reminder_family(*, patient: Any) -> list[Any]:
    from patients.selectors import patient_family

    return list(patient_family(patient=patient))


def reminder_clinics(*, patient: Any) -> list[Any]:
    """Clinics the family is in contact with: a reminder arrives as that clinic's notice."""
    from clinics.models import Clinic

    family_ids = [p.pk for p in reminder_family(patient=patient)]
    return list(Clinic.objects.filter(contacts__patient_id__in=family_ids).distinct().order_by("name"))


def reminders_of(*, patient: Any) -> QuerySet[PersonalReminder]:
    holder = patient.account_holder
    return (
        PersonalReminder.objects.filter(is_active=True, patient__in=[holder.pk, *holder.dependants.values_list("pk", flat=True)])
        .select_related("clinic", "patient")
        .order_by("next_at")
    )


def reminder_of(*, patient: Any, reminder_id: str) -> PersonalReminder | None:
    if not str(reminder_id).isdigit():
        return None
    return reminders_of(patient=patient).filter(pk=int(reminder_id)).first()


def confirm_request_to(*, provider: str, phone: str, now: datetime) -> Delivery | None:
    """The newest confirm request this provider texted to `phone` (E.164) whose visit is still ahead, or None.

    The phone is the only key an SMS reply carries, so only a request that went to
    that very number can be answered from it.
    """
    from appointments.models import Appointment

    if not phone:
        return None
    return (
        Delivery.objects.filter(
            channel=Delivery.Channel.SMS,
            provider=provider,
            destination=phone,
            status__in=[Delivery.Status.SENT, Delivery.Status.DELIVERED],
            notification__kind=Notification.Kind.CONFIRM,
            notification__visit__status__in=Appointment.UPCOMING,
            notification__visit__starts_at__gt=now,
        )
        .select_related("notification__visit__clinic", "notification__visit__patient__guardian__user", "notification__visit__patient__user")
        .order_by("-notification__created_at", "-pk")
        .first()
    )
