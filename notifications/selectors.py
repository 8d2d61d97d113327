"""Reads for the portal's notification page and the admin's outbox."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from notifications.models import DeliveryAttempt, Notification, PersonalReminder, Preference


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


def notification_attempts(*, notification: Notification) -> list[DeliveryAttempt]:
    """Every attempt of every delivery of one notification, channel by channel: one query for the admin's history."""
    return list(
        DeliveryAttempt.objects.filter(delivery__notification=notification)
        .select_related("delivery")
        .order_by("delivery__channel", "delivery_id", "number")
    )
