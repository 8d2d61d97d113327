"""Dispatch: decide whether and where pending notifications go, and queue one delivery per channel.

What a kind says and when it is no longer wanted is declared by the app that owns its subject
(notifications.kinds); the rules every kind shares (opt-out, consent, quiet hours) are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from notifications import kinds
from notifications.models import Delivery, Notification, Preference
from notifications.selectors import patient_channels
from notifications.services import sending
from notifications.services.bulk import save_grouped
from patients.models import Patient
from patients.selectors import consent_given_pairs

QUIET_STARTS = time(21)
QUIET_ENDS = time(9)


def quiet_until(*, clinic: Any, now: datetime) -> datetime | None:
    """The next 09:00 in the clinic's zone if `now` is within 21:00–09:00 there, else None."""
    local = timezone.localtime(now, clinic.tz)
    if QUIET_ENDS <= local.time() < QUIET_STARTS:
        return None
    day = local.date() if local.time() < QUIET_ENDS else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_ENDS, tzinfo=clinic.tz)


def notification_dispatch(*, notification_id: int, now: datetime | None = None) -> Notification:
    """Decide whether and where one pending notification goes (see notifications_dispatch_batch)."""
    notifications_dispatch_batch(notification_ids=[notification_id], now=now)
    return Notification.objects.get(pk=notification_id)


def _decision(notification: Notification, *, patient: Patient | None, preference: Preference, consented: bool, now: datetime) -> str | None:
    """Why this notification must not go out, or None. A sign-in code was asked for just now: no opt-out stops it."""
    rules = kinds.rules_for(notification.kind)
    if not rules.asked_for:
        if preference.opted_out:
            return Notification.Skip.OPTED_OUT
        if patient is not None and not consented:
            return Notification.Skip.NO_CONSENT
    return rules.skip(notification, patient, preference, now)


def _routes(notification: Notification, *, patient: Patient | None, preference: Preference) -> list[tuple[str, str]]:
    rules = kinds.rules_for(notification.kind)
    routes: list[tuple[str, str]] = []
    if rules.asked_for:
        pass  # where the person asked for it, whatever their other channels (the kind's own route)
    elif patient is not None:
        routes = patient_channels(patient=patient, preference=preference)
    elif (email := notification.recipient.email if notification.recipient else "") and preference.email:  # staff: e-mail only
        routes = [(Delivery.Channel.EMAIL, email)]
    return rules.routes(notification, routes)


@dataclass
class _Recipients:
    """Who the notices of one batch go to, read in a fixed number of queries."""

    patients: dict[int, Patient]
    preferences: dict[int, Preference]
    consented: set[tuple[int, int]]

    @classmethod
    def of(cls, rows: list[Notification]) -> _Recipients:
        users = {n.recipient_id for n in rows if n.recipient_id is not None}
        patients = {p.user_id: p for p in Patient.objects.filter(user_id__in=users)}
        preferences = {p.user_id: p for p in Preference.objects.filter(user_id__in=users)}
        pairs = {(patients[n.recipient_id].pk, n.clinic_id) for n in rows if n.recipient_id in patients and n.clinic_id is not None}
        return cls(patients=patients, preferences=preferences, consented=consent_given_pairs(pairs=pairs))

    def patient(self, notification: Notification) -> Patient | None:
        return self.patients.get(notification.recipient_id) if notification.recipient_id is not None else None

    def preference(self, notification: Notification) -> Preference:
        found = self.preferences.get(notification.recipient_id) if notification.recipient_id is not None else None
        return found or Preference(user_id=notification.recipient_id)  # type: ignore[misc]  # a code's notice may have no user


def _pending_rows(notification_ids: list[int], now: datetime) -> list[Notification]:
    """The notices still pending and due, locked (rows another dispatch holds are skipped, not waited for)."""
    return list(
        Notification.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(pk__in=notification_ids, status=Notification.Status.PENDING)
        .exclude(not_before__gt=now)
        .select_related("clinic", "recipient", "thread", "message", "visit__branch", "promotion", "personal_reminder", "login_code")
    )


def _dispatch_one(notification: Notification, recipients: _Recipients, now: datetime) -> list[Delivery]:
    """Decide one notice in place (skipped, postponed to the morning or dispatched); returns its deliveries."""
    patient = recipients.patient(notification)
    preference = recipients.preference(notification)
    is_consented = patient is not None and (patient.pk, notification.clinic_id) in recipients.consented
    skip = _decision(notification, patient=patient, preference=preference, consented=is_consented, now=now)
    if skip is None and not notification.urgent:
        later = quiet_until(clinic=notification.clinic, now=now)
        if later is not None:
            notification.not_before = later
            return []
    routes = _routes(notification, patient=patient, preference=preference) if skip is None else []
    if skip is None and not routes:
        skip = Notification.Skip.NO_CHANNEL
    if skip is not None:
        notification.status, notification.skip_reason = Notification.Status.SKIPPED, skip
        return []
    rules = kinds.rules_for(notification.kind)
    subject, text = rules.text(notification, patient is not None)
    notification.status, notification.dispatched_at = Notification.Status.DISPATCHED, now
    return [
        Delivery(notification=notification, channel=c, destination=to, subject=subject, text=rules.channel_text(notification, c, text))
        for c, to in routes
    ]


def notifications_dispatch_batch(*, notification_ids: list[int], now: datetime | None = None) -> list[int]:
    """Decide whether and where pending notifications go, and queue one delivery per channel. Returns the deliveries.

    Skipped (with the reason kept) when the person opted out, withdrew consent or
    read the message meanwhile; postponed to 09:00 in the clinic's zone at night
    unless urgent. A batch costs a fixed number of queries: the beat sweep hands
    out hundreds at a time.
    """
    now = now or timezone.now()
    with transaction.atomic():
        rows = _pending_rows(notification_ids, now)
        if not rows:
            return []
        recipients = _Recipients.of(rows)
        deliveries: list[Delivery] = []
        with translation.override(settings.LANGUAGE_CODE):  # the texts go out in the clinic's language
            for notification in rows:
                deliveries += _dispatch_one(notification, recipients, now)
        save_grouped(Notification, rows, ["status", "skip_reason", "not_before", "dispatched_at"])
        created = Delivery.objects.bulk_create(deliveries)
        delivery_ids = [d.pk for d in created]
        transaction.on_commit(lambda: sending.deliveries_queue(delivery_ids))
    return delivery_ids


def due_notification_ids(*, now: datetime | None = None, limit: int = 20_000) -> list[int]:
    """Pending notifications whose time has come, oldest first."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING)
        .exclude(not_before__gt=now)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def notifications_dispatch_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Dispatch, in this process, every notification due at `now` (tests and one-off runs; beat fans out instead)."""
    now = now or timezone.now()
    due = due_notification_ids(now=now, limit=limit)
    for notification_id in due:
        notification_dispatch(notification_id=notification_id, now=now)
    return len(due)
