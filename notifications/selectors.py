"""Reads for the portal's notification page and reminder form, and the admin's outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import Truncator

from clinics.models import Clinic
from core.client_input import whole_number
from notifications.models import Delivery, DeliveryAttempt, Notification, PersonalReminder, Preference
from patients.selectors import patient_family

# Whose messages a patient may turn into a reminder: the clinic's people and its bot, not their own words or system lines.
REMINDABLE_AUTHORS = ("staff", "bot")


def patient_channels(*, patient: Any, preference: Preference) -> list[tuple[str, str]]:
    """(channel, destination) a patient can be reached on by their own choices: a phone for SMS, an address for e-mail.

    Dispatch routes notices by it, and the promotion editor counts an audience's reach with it.
    """
    channels: list[tuple[str, str]] = []
    if patient.phone and preference.sms:
        channels.append((Delivery.Channel.SMS, patient.phone.as_e164))
    if patient.email and preference.email:
        channels.append((Delivery.Channel.EMAIL, patient.email))
    return channels


def preference_for(*, user: Any) -> Preference:
    """The person's choices, or the defaults (every channel) when they never chose."""
    return Preference.objects.filter(user=user).first() or Preference(user=user)


def reminder_family(*, patient: Any) -> list[Any]:
    return list(patient_family(patient=patient))


def reminder_clinics(*, patient: Any) -> list[Any]:
    """Clinics the family is in contact with: a reminder arrives as that clinic's notice."""
    family_ids = [p.pk for p in reminder_family(patient=patient)]
    return list(Clinic.objects.filter(contacts__patient_id__in=family_ids).distinct().order_by("name"))


def reminders_of(*, patient: Any, include_inactive: bool = False) -> QuerySet[PersonalReminder]:
    """The family's reminders, soonest first; ended and removed ones only when asked (the API's history)."""
    holder = patient.account_holder
    reminders = PersonalReminder.objects.filter(patient__in=[holder.pk, *holder.dependants.values_list("pk", flat=True)])
    if not include_inactive:
        reminders = reminders.filter(is_active=True)
    return reminders.select_related("clinic", "patient").order_by("-is_active", "next_at", "pk")


def reminder_of(*, patient: Any, reminder_id: str) -> PersonalReminder | None:
    if (pk := whole_number(reminder_id)) is None:
        return None
    return reminders_of(patient=patient).filter(pk=pk).first()


@dataclass(frozen=True)
class ReminderSource:
    """Where a reminder is being set from: the conversation to go back to, and what the form starts with."""

    thread: Any = None
    initial: dict[str, Any] = field(default_factory=dict)


def reminder_source(*, user: Any, patient: Any, thread_id: str, message_seq: str = "") -> ReminderSource:
    """Starting values from query parameters, trusted only for a thread of the user's own family.

    Anything else (another family's thread, a patient's own message, a seq that is
    not there) is ignored rather than refused: the form then simply starts empty.
    Threads and messages are reached through the family's reverse relations
    (`person.threads`, `thread.messages`): the outbox does not import messaging above it.
    """
    if (pk := whole_number(thread_id)) is None:
        return ReminderSource()
    family_threads = (
        person.threads.visible_to(user).select_related("clinic", "patient").filter(pk=pk) for person in reminder_family(patient=patient)
    )
    thread = next((found for threads in family_threads if (found := threads.first()) is not None), None)
    if thread is None:
        return ReminderSource()
    tomorrow = timezone.localtime(timezone.now(), thread.clinic.tz).date() + timedelta(days=1)
    initial = {"clinic": thread.clinic_id, "patient": thread.patient_id, "day": tomorrow.isoformat()}
    if (seq := whole_number(message_seq)) is not None:
        text = thread.messages.visible_to(user).filter(seq=seq, author__in=REMINDABLE_AUTHORS).values_list("text", flat=True).first()
        words = " ".join((text or "").split())
        if words:
            initial["text"] = Truncator(words).chars(PersonalReminder._meta.get_field("text").max_length or 200)
    return ReminderSource(thread=thread, initial=initial)


def notification_attempts(*, notification: Notification) -> list[DeliveryAttempt]:
    """Every attempt of every delivery of one notification, channel by channel: one query for the admin's history."""
    return list(
        DeliveryAttempt.objects.filter(delivery__notification=notification)
        .select_related("delivery")
        .order_by("delivery__channel", "delivery_id", "number")
    )
