"""Reads for the portal's notification page and reminder form, the admin's outbox, and the visit an SMS reply is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import Truncator

from core.client_input import whole_number
from notifications.models import Delivery, DeliveryAttempt, Notification, PersonalReminder, Preference

# Whose messages a patient may turn into a reminder: the clinic's people and its bot, not their own words or system lines.
REMINDABLE_AUTHORS = ("staff", "bot")


def patient_channels(*, patient: Any, preference: Preference) -> list[tuple[str, str]]:
    """(channel, destination) a patient can be reached on by their own choices: a phone for SMS, an address for e-mail.

    Dispatch routes notices by it, and the promotion editor counts an audience's reach with it.
    """
    channels = []
    if patient.phone and preference.sms:
        channels.append((Delivery.Channel.SMS, patient.phone.as_e164))
    if patient.email and preference.email:
        channels.append((Delivery.Channel.EMAIL, patient.email))
    return channels


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
            status__in=[Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.UNKNOWN],  # a reply proves it arrived
            notification__kind=Notification.Kind.CONFIRM,
            notification__visit__status__in=Appointment.UPCOMING,
            notification__visit__starts_at__gt=now,
        )
        .select_related("notification__visit__clinic", "notification__visit__patient__guardian__user", "notification__visit__patient__user")
        .order_by("-notification__created_at", "-pk")
        .first()
    )


@dataclass(frozen=True)
class ReminderSource:
    """Where a reminder is being set from: the conversation to go back to, and what the form starts with."""

    thread: Any = None
    initial: dict[str, Any] = field(default_factory=dict)


def reminder_source(*, user: Any, thread_id: str, message_seq: str = "") -> ReminderSource:
    """Starting values from query parameters, trusted only for a thread of the user's own family.

    Anything else (another family's thread, a patient's own message, a seq that is
    not there) is ignored rather than refused: the form then simply starts empty.
    """
    from messaging.models import Message, Thread

    if (pk := whole_number(thread_id)) is None:
        return ReminderSource()
    thread = Thread.objects.visible_to(user).select_related("clinic", "patient").filter(pk=pk).first()
    if thread is None:
        return ReminderSource()
    tomorrow = timezone.localtime(timezone.now(), thread.clinic.tz).date() + timedelta(days=1)
    initial = {"clinic": thread.clinic_id, "patient": thread.patient_id, "day": tomorrow.isoformat()}
    if (seq := whole_number(message_seq)) is not None:
        text = (
            Message.objects.visible_to(user)
            .filter(thread=thread, seq=seq, author__in=REMINDABLE_AUTHORS)
            .values_list("text", flat=True)
            .first()
        )
        words = " ".join((text or "").split())
        if words:
            initial["text"] = Truncator(words).chars(PersonalReminder._meta.get_field("text").max_length)
    return ReminderSource(thread=thread, initial=initial)


def notification_attempts(*, notification: Notification) -> list[DeliveryAttempt]:
    """Every attempt of every delivery of one notification, channel by channel: one query for the admin's history."""
    return list(
        DeliveryAttempt.objects.filter(delivery__notification=notification)
        .select_related("delivery")
        .order_by("delivery__channel", "delivery_id", "number")
    )
