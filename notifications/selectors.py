"""Reads for the portal's notification page."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from notifications.models import PersonalReminder, Preference


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
