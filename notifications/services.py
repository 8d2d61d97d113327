"""Writes of the delivery pipeline: dispatch a notification, send a delivery, record a provider's report.

At most once per channel: a delivery is marked `sending` (and the attempt
recorded) in its own committed transaction before the provider is called. If
the worker dies after that, whoever takes the delivery over (the redelivered
task, or the beat sweep once it has been `sending` for too long) does not call
the provider again when it may have it: an unknown outcome is recorded as such
rather than risking a second SMS.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from clinics.zones import zone_label
from messaging.text import preview
from notifications.models import Delivery, DeliveryAttempt, Notification, PersonalReminder, Preference
from notifications.providers import provider_for
from notifications.selectors import patient_channels
from notifications.sms import SmsError, sms_replies_supported
from patients.selectors import patient_sees_zones

logger = logging.getLogger(__name__)

VISIT_LINK_SALT = "appointments.visit-link"
QUIET_STARTS = time(21)
QUIET_ENDS = time(9)
MAX_ATTEMPTS = 5
# How long the "in flight" / "handed to the provider" marks of a delivery live (longer than any redelivery delay).
STAGE_MARK_SECONDS = 2 * 24 * 3600


class TryAgain(Exception):
    """A temporary provider error: the task retries after `delay` seconds (see retry_delay)."""

    def __init__(self, error: str, delay: int) -> None:
        super().__init__(error)
        self.delay = delay


def retry_delay(delivery: Delivery) -> int:
    """A growing pause before the next attempt: 15 s, 30 s … up to 15 min; a sign-in code, which lives
    five minutes, is tried again within seconds."""
    if delivery.notification.login_code_id:
        return 2**delivery.attempts
    return min(15 * 2 ** (delivery.attempts - 1), 900)


def quiet_until(*, clinic: Any, now: datetime) -> datetime | None:
    """The next 09:00 in the clinic's zone if `now` is within 21:00–09:00 there, else None."""
    local = timezone.localtime(now, clinic.tz)
    if QUIET_ENDS <= local.time() < QUIET_STARTS:
        return None
    day = local.date() if local.time() < QUIET_ENDS else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_ENDS, tzinfo=clinic.tz)


def _already_read(notification: Notification, patient: Any) -> bool:
    """Everything the notice is about was read meanwhile (a burst: every message of it)."""
    thread = notification.thread
    if notification.kind != Notification.Kind.MESSAGE or thread is None:
        return False
    if patient is not None:
        return thread.patient_read_seq >= thread.last_public_seq
    return thread.staff_read_seq >= thread.last_seq


# What a stored sign-in code text shows instead of the code; the code goes in at the moment of sending.
CODE_MASK = "••••••"


def _code_key(login_code_id: int) -> str:
    return f"login-code:{login_code_id}"


def _code_still_wanted(login_code: Any, now: datetime) -> bool:
    return login_code.used_at is None and not login_code.superseded and login_code.expires_at > now


def code_notify(*, login_code: Any, code: str) -> Notification:
    """Send a one-time code through the outbox: urgent (no quiet hours), dispatched at once rather than by the sweep.

    The plain code lives only in the cache, for the code's lifetime: the outbox
    and the admin show the text with the code masked.
    """
    from notifications.tasks import dispatch_notifications

    lifetime = max(1, int((login_code.expires_at - timezone.now()).total_seconds()))
    with transaction.atomic():
        cache.set(_code_key(login_code.pk), code, timeout=lifetime)
        notification = Notification.objects.create(
            kind=Notification.Kind.CODE, login_code=login_code, recipient=login_code.user, urgent=True, reason="code"
        )
        transaction.on_commit(lambda: dispatch_notifications.delay([notification.pk]))
    return notification


def _still_wanted(notification: Notification, now: datetime) -> str | None:
    """Why a delivery about to go out is no longer wanted (the visit or the code changed since dispatch), or None."""
    if notification.visit_id and not _visit_still_ahead(notification.visit, now):
        return _("Not sent: the visit was cancelled, moved or has begun.")
    if notification.login_code_id and not _code_still_wanted(notification.login_code, now):
        return _("Not sent: the code was used, replaced or has expired.")
    return None


def _visit_still_ahead(visit: Any, now: datetime) -> bool:
    from appointments.models import Appointment

    return visit.status in Appointment.UPCOMING and visit.starts_at > now


def visit_link_token(visit_id: int) -> str:
    """The signed part of the confirm/cancel link in a reminder: no sign-in needed from an SMS."""
    return signing.dumps(visit_id, salt=VISIT_LINK_SALT)


def _visit_text(notification: Notification) -> tuple[str, str]:
    visit = notification.visit
    clinic = notification.clinic
    local = timezone.localtime(visit.starts_at, clinic.tz)
    # A person with clinics in several zones reads the zone beside the time (clinics.zones).
    zone = f" ({zone_label(time_zone=clinic.time_zone, moment=visit.starts_at)})" if patient_sees_zones(patient=visit.patient) else ""
    place = (visit.branch.address if visit.branch_id and visit.branch.address else clinic.address) or ""
    if notification.kind == Notification.Kind.CONFIRM:
        link = settings.SITE_URL + reverse("appointments:visit-link", args=[visit_link_token(visit.pk)])
        subject = _("Your visit to %(clinic)s") % {"clinic": clinic.name}
        text = _("%(clinic)s: visit on %(when)s, %(doctor)s. Please confirm or cancel: %(link)s") % {
            "clinic": clinic.name,
            "when": formats.date_format(local, "j E, H:i") + zone,
            "doctor": visit.doctor.full_name,
            "link": link,
        }
    else:
        subject = _("Reminder: visit at %(time)s") % {"time": formats.time_format(local, "H:i")}
        text = _("%(clinic)s: your visit at %(time)s, %(doctor)s. %(place)s") % {
            "clinic": clinic.name,
            "time": formats.time_format(local, "H:i") + zone,
            "doctor": visit.doctor.full_name,
            "place": place,
        }
    return subject, text.strip()


def _text(notification: Notification, *, for_patient: bool) -> tuple[str, str]:
    """(subject, text); the caller picks the clinic's language. Sensitive threads never put their words in an SMS."""
    clinic = notification.clinic
    thread = notification.thread
    if notification.login_code_id:
        return _("Your sign-in code"), _("Your code: %(code)s. Valid for 5 minutes. Do not tell it to anyone.") % {"code": CODE_MASK}
    if notification.visit_id:
        return _visit_text(notification)
    if notification.personal_reminder_id:
        subject = _("Reminder")
        link = settings.SITE_URL + reverse("portal-notifications")
        return subject, f"{subject}: {notification.personal_reminder.text}\n{link}"
    if notification.promotion_id:
        promotion = notification.promotion
        link = settings.SITE_URL + reverse("promotions:promotion", args=[promotion.pk])
        return promotion.title, f"{clinic.name}: {promotion.title}. {link}"
    if for_patient:
        link = settings.SITE_URL + reverse("messaging:portal-thread", args=[thread.pk]) if thread else settings.SITE_URL
        subject = _("New message from %(clinic)s") % {"clinic": clinic.name}
    else:
        link = settings.SITE_URL + reverse("inbox:thread", args=[thread.pk]) if thread else settings.SITE_URL
        subject = {
            Notification.Kind.MENTION: _("You were mentioned in a note"),
            Notification.Kind.ASSIGNED: _("A conversation was assigned to you"),
        }.get(notification.kind, _("New message in your thread"))
    # The newest words of the thread (a burst is one notice), never those of a sensitive thread.
    words = thread.last_message_preview if thread and not thread.sensitive else ""
    body = f"{subject}: «{preview(words, 80)}»" if words else subject
    return subject, f"{body}\n{link}"


def _save_grouped(model: type[models.Model], rows: Iterable[models.Model], fields: list[str], **only: Any) -> None:
    """Write `fields` of many rows with one UPDATE per distinct set of new values.

    Django's bulk_update builds a CASE expression per field and row in Python, which
    cost more than everything else in a batch put together (bench/notifications.py). A batch's
    rows mostly get the same values (dispatched at one moment, sent by one provider),
    so grouping makes one or two plain UPDATEs. `only`: conditions a row must still meet.
    """
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, name) for name in fields)].append(row.pk)
    for values, pks in groups.items():
        model._base_manager.filter(pk__in=pks, **only).update(**dict(zip(fields, values, strict=True)))


def _save_message_ids(deliveries: list[Delivery]) -> None:
    """The provider's id of each delivery (all different) in one UPDATE … CASE, written as SQL for the reason above."""
    pairs = [(d.pk, d.provider_message_id) for d in deliveries if d.provider_message_id]
    if not pairs:
        return
    table, when = Delivery._meta.db_table, " ".join(["WHEN %s THEN %s"] * len(pairs))
    params = [value for pair in pairs for value in pair] + [pk for pk, _id in pairs]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET provider_message_id = CASE id {when} END WHERE id IN ({', '.join(['%s'] * len(pairs))})",  # noqa: S608
            params,
        )


def _channel_text(notification: Notification, channel: str, text: str) -> str:
    """The confirm request by SMS invites a reply where the provider passes replies back; e-mail keeps the link only."""
    if channel != Delivery.Channel.SMS or notification.kind != Notification.Kind.CONFIRM or not sms_replies_supported():
        return text
    hint = _("Reply 1 to confirm or 2 to cancel.")  # in the clinic's language: the caller has chosen it
    return f"{text} {hint}"


def notification_dispatch(*, notification_id: int, now: datetime | None = None) -> Notification:
    """Decide whether and where one pending notification goes (see notifications_dispatch_batch)."""
    notifications_dispatch_batch(notification_ids=[notification_id], now=now)
    return Notification.objects.get(pk=notification_id)


def _decision(notification: Notification, *, patient: Any, preference: Preference, consented: bool, now: datetime) -> str | None:
    """Why this notification must not go out, or None. A sign-in code was asked for just now: no opt-out stops it."""
    if notification.login_code_id:
        return None if _code_still_wanted(notification.login_code, now) else Notification.Skip.CODE_SPENT
    if preference.opted_out:
        return Notification.Skip.OPTED_OUT
    if patient is not None and not consented:
        return Notification.Skip.NO_CONSENT
    if _already_read(notification, patient):
        return Notification.Skip.READ
    if notification.visit_id and not _visit_still_ahead(notification.visit, now):
        return Notification.Skip.VISIT_CHANGED
    if notification.promotion_id and not preference.promotions:
        return Notification.Skip.OPTED_OUT
    if notification.promotion_id and notification.promotion.valid_until < timezone.localtime(now, notification.clinic.tz).date():
        return Notification.Skip.ENDED
    return None


def _routes(notification: Notification, *, patient: Any, preference: Preference) -> list[tuple[str, str]]:
    if notification.login_code_id:  # where the person asked for it, whatever their other channels
        return [(notification.login_code.channel, notification.login_code.destination)]
    if patient is not None:
        routes = patient_channels(patient=patient, preference=preference)
    else:  # staff: e-mail only
        email = notification.recipient.email
        routes = [(Delivery.Channel.EMAIL, email)] if email and preference.email else []
    if notification.promotion_id:  # only the channels the manager chose for this promotion
        promotion = notification.promotion
        chosen = {Delivery.Channel.SMS: promotion.by_sms, Delivery.Channel.EMAIL: promotion.by_email}
        routes = [route for route in routes if chosen[route[0]]]
    return routes


def notifications_dispatch_batch(*, notification_ids: list[int], now: datetime | None = None) -> list[int]:
    """Decide whether and where pending notifications go, and queue one delivery per channel. Returns the deliveries.

    Skipped (with the reason kept) when the person opted out, withdrew consent or
    read the message meanwhile; postponed to 09:00 in the clinic's zone at night
    unless urgent. A batch costs a fixed number of queries: the beat sweep hands
    out hundreds at a time.
    """
    from patients.models import Patient
    from patients.selectors import consent_given_pairs

    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=notification_ids, status=Notification.Status.PENDING)
            .exclude(not_before__gt=now)
            .select_related("clinic", "recipient", "thread", "message", "visit__branch", "promotion", "personal_reminder", "login_code")
        )
        if not rows:
            return []
        users = {n.recipient_id for n in rows}
        patients = {p.user_id: p for p in Patient.objects.filter(user_id__in=users)}
        preferences = {p.user_id: p for p in Preference.objects.filter(user_id__in=users)}
        consented = consent_given_pairs(pairs={(patients[n.recipient_id].pk, n.clinic_id) for n in rows if n.recipient_id in patients})
        deliveries: list[Delivery] = []
        changed: list[Notification] = []
        with translation.override(settings.LANGUAGE_CODE):  # the texts go out in the clinic's language
            for notification in rows:
                patient = patients.get(notification.recipient_id)
                preference = preferences.get(notification.recipient_id) or Preference(user_id=notification.recipient_id)
                is_consented = patient is not None and (patient.pk, notification.clinic_id) in consented
                skip = _decision(notification, patient=patient, preference=preference, consented=is_consented, now=now)
                if skip is None and not notification.urgent:
                    later = quiet_until(clinic=notification.clinic, now=now)
                    if later is not None:
                        notification.not_before = later
                        changed.append(notification)
                        continue
                routes = _routes(notification, patient=patient, preference=preference) if skip is None else []
                if skip is None and not routes:
                    skip = Notification.Skip.NO_CHANNEL
                if skip is not None:
                    notification.status, notification.skip_reason = Notification.Status.SKIPPED, skip
                    changed.append(notification)
                    continue
                subject, text = _text(notification, for_patient=patient is not None)
                deliveries += [
                    Delivery(
                        notification=notification, channel=c, destination=to, subject=subject, text=_channel_text(notification, c, text)
                    )
                    for c, to in routes
                ]
                notification.status, notification.dispatched_at = Notification.Status.DISPATCHED, now
                changed.append(notification)
        _save_grouped(Notification, changed, ["status", "skip_reason", "not_before", "dispatched_at"])
        created = Delivery.objects.bulk_create(deliveries)
        delivery_ids = [d.pk for d in created]
        transaction.on_commit(lambda: _queue(delivery_ids))
    return delivery_ids


DELIVERY_BATCH = 50


def _queue(delivery_ids: list[int]) -> None:
    """Deliveries go to the workers in batches: one task claims and records many at a fixed cost."""
    from notifications.tasks import deliver, deliver_batch

    if len(delivery_ids) <= 2:
        for delivery_id in delivery_ids:
            deliver.delay(delivery_id)
        return
    for start in range(0, len(delivery_ids), DELIVERY_BATCH):
        deliver_batch.delay(delivery_ids[start : start + DELIVERY_BATCH])


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


def _stage_key(delivery_id: int, attempt: int, stage: str) -> str:
    """A mark of one attempt: an attempt that timed out leaves its mark, which must not speak for the next one."""
    return f"delivery:{stage}:{delivery_id}:{attempt}"


def _stuck_after() -> timedelta:
    return timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS)


def _unknown_fate(delivery: Delivery) -> str:
    if delivery.channel == Delivery.Channel.SMS:
        return _("The worker stopped while sending; whether the SMS went out is unknown. Not sent again, to avoid a duplicate.")
    return _("The worker stopped while sending; whether the e-mail went out is unknown. Not sent again, to avoid a duplicate.")


def _take_over(delivery_ids: list[int], *, now: datetime, token: str, own_task: str = "") -> list[Delivery]:
    """Take `sending` deliveries whose holder is gone, with one conditional UPDATE: whoever's UPDATE matched a row owns it.

    Gone means stuck longer than DELIVERY_STUCK_AFTER_SECONDS (a live holder stops
    calling providers long before, see deliveries_send), or held by `own_task`: the
    broker redelivers a task only once the worker running it has died.
    """
    if not delivery_ids:
        return []
    gone = models.Q(sending_since__lt=now - _stuck_after()) | models.Q(sending_since__isnull=True)
    if own_task:
        gone |= models.Q(sending_task=own_task)
    taken = (
        Delivery._base_manager.filter(pk__in=delivery_ids, status=Delivery.Status.SENDING)
        .filter(gone)
        .update(sending_task=token, sending_since=now)
    )
    if not taken:
        return []
    return list(
        Delivery._base_manager.filter(pk__in=delivery_ids, status=Delivery.Status.SENDING, sending_task=token)
        .select_related("notification__visit", "notification__login_code")
        .order_by("pk")
    )


def _settle(stuck: list[Delivery], now: datetime) -> list[DeliveryAttempt]:
    """Decide each taken-over delivery by its attempt rows and the marks; returns the attempts closed.

    Sent when an attempt or the provider's id says so, or the "handed" mark (the
    provider answered, the worker died before writing it down); unknown when only
    the "in flight" mark is there (the provider may have it: never sent again);
    otherwise it never reached the provider and is pending again, to be sent now.
    """
    attempts = list(DeliveryAttempt.objects.filter(delivery__in=stuck).order_by("number"))
    accepted = {a.delivery_id for a in attempts if a.outcome == DeliveryAttempt.Outcome.SENT}
    open_attempts = {a.delivery_id: a for a in attempts if a.outcome == DeliveryAttempt.Outcome.IN_PROGRESS}
    keys = [_stage_key(d.pk, d.attempts, stage) for d in stuck for stage in ("handed", "in-flight")]
    marks = cache.get_many(keys)
    closed = []
    for delivery in stuck:
        attempt = open_attempts.get(delivery.pk) or DeliveryAttempt(delivery=delivery, number=delivery.attempts)
        attempt.finished_at = now
        if delivery.provider_message_id or delivery.pk in accepted or _stage_key(delivery.pk, delivery.attempts, "handed") in marks:
            attempt.outcome = DeliveryAttempt.Outcome.SENT
            delivery.status, delivery.sent_at, delivery.last_error = Delivery.Status.SENT, now, ""
        elif _stage_key(delivery.pk, delivery.attempts, "in-flight") in marks:
            attempt.outcome = DeliveryAttempt.Outcome.INTERRUPTED
            attempt.error = delivery.last_error = _unknown_fate(delivery)[:500]
            delivery.status = Delivery.Status.UNKNOWN
        else:
            attempt.outcome, attempt.error = DeliveryAttempt.Outcome.INTERRUPTED, _("Not reached before the worker stopped; sent again.")
            delivery.status, delivery.sending_since, delivery.sending_task = Delivery.Status.PENDING, None, ""
        if attempt.pk:
            closed.append(attempt)
    return closed


def _claim(delivery_ids: list[int], now: datetime, token: str, task_id: str) -> list[tuple[Delivery, DeliveryAttempt]]:
    """Mark deliveries `sending` and open their attempts, committed before any provider is called.

    A delivery found `sending` is left to its holder, unless the holder is gone (see
    _take_over): it is then settled by _settle, and sent here if it never reached
    the provider. Every write is conditional on the status read, so a task that
    comes back late (the broker's visibility timeout) finds the sweep's decision
    and changes nothing.
    """
    claimed: list[tuple[Delivery, DeliveryAttempt]] = []
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        rows = list(
            Delivery.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=delivery_ids)
            .select_related("notification__visit", "notification__login_code")
            .order_by("pk")
        )
        stuck = _take_over([d.pk for d in rows if d.status == Delivery.Status.SENDING], now=now, token=token, own_task=task_id)
        _save_grouped(DeliveryAttempt, _settle(stuck, now), ["outcome", "error", "finished_at"])
        _save_grouped(Delivery, stuck, ["status", "sent_at", "last_error", "sending_since", "sending_task"], sending_task=token)
        settled = {d.pk: d for d in stuck}
        rows = [settled.get(d.pk, d) for d in rows]
        unwanted: list[Delivery] = []
        for delivery in rows:
            if delivery.status != Delivery.Status.PENDING:
                continue  # held by a live task, sent, delivered, failed or unknown: a duplicate task does nothing
            reason = _still_wanted(delivery.notification, now)
            if reason:
                delivery.status, delivery.last_error = Delivery.Status.FAILED, reason
                unwanted.append(delivery)
                continue
            claimed.append((delivery, DeliveryAttempt(delivery=delivery, number=delivery.attempts + 1, started_at=now)))
        _save_grouped(Delivery, unwanted, ["status", "last_error"], status=Delivery.Status.PENDING)
        pending = [d.pk for d, _a in claimed]
        taken = (
            Delivery._base_manager.filter(pk__in=pending, status=Delivery.Status.PENDING)
            .update(status=Delivery.Status.SENDING, attempts=F("attempts") + 1, sending_since=now, sending_task=token)
        )
        if taken != len(pending):  # another task claimed some between the read and the UPDATE (no row locks on SQLite)
            ours = set(Delivery._base_manager.filter(pk__in=pending, sending_task=token, sending_since=now).values_list("pk", flat=True))
            claimed = [(d, a) for d, a in claimed if d.pk in ours]
        for delivery, _attempt in claimed:
            delivery.status, delivery.attempts = Delivery.Status.SENDING, delivery.attempts + 1
            delivery.sending_since, delivery.sending_task = now, token
        DeliveryAttempt.objects.bulk_create([a for _d, a in claimed])
    return claimed


def _text_to_send(delivery: Delivery) -> str:
    """The stored text, with a sign-in code put in at the last moment (SmsError if it has left the cache meanwhile)."""
    if not delivery.notification.login_code_id:
        return delivery.text
    code = cache.get(_code_key(delivery.notification.login_code_id))
    if code is None:
        raise SmsError("the code is no longer available (expired); the person can request a new one", retryable=False)
    return delivery.text.replace(CODE_MASK, code)


class _OutOfTime(SmsError):
    """The batch ran past its share of the stuck threshold: the rest go on as single tasks, not counted as a failure."""

    def __init__(self) -> None:
        super().__init__(_("Not reached within the batch's time; queued again."), retryable=True)


def deliveries_send(*, delivery_ids: list[int], task_id: str = "") -> list[tuple[int, int, str]]:
    """Hand deliveries to their providers, at most once each. Returns (id, delay in seconds, error) of those to retry later.

    `task_id` is the Celery task's id, the same on a redelivery. A batch stops
    calling providers after half the stuck threshold, so the sweep never takes over
    a delivery whose holder may still call the provider.
    """
    now = timezone.now()
    token = task_id or f"call-{uuid.uuid4().hex}"
    claimed = _claim(delivery_ids, now, token, task_id)
    stop_at = now + _stuck_after() / 2
    providers: dict[str, Any] = {}
    outcomes = []
    handed: str | None = None  # the previous delivery's "handed" mark goes with the next "in-flight" one, in one round trip
    for delivery, attempt in claimed:
        if timezone.now() >= stop_at:
            outcomes.append((delivery, attempt, "", None, _OutOfTime()))
            continue
        provider = providers.setdefault(delivery.channel, provider_for(delivery.channel))
        marks = {_stage_key(delivery.pk, delivery.attempts, "in-flight"): 1} | ({handed: 1} if handed else {})
        cache.set_many(marks, timeout=STAGE_MARK_SECONDS)
        handed = None
        try:
            message_id = provider.send(
                destination=delivery.destination, subject=delivery.subject, text=_text_to_send(delivery), key=delivery.idempotency_key
            )
        except SmsError as exc:
            outcomes.append((delivery, attempt, provider.name, None, exc))
            continue
        except Exception as exc:  # an adapter's unforeseen error: written down, never left `sending`
            # Not retried: the provider may have taken it before the error, and a second SMS is worse than none.
            logger.exception("Delivery %s: %s raised", delivery.pk, provider.name)
            outcomes.append((delivery, attempt, provider.name, None, SmsError(f"unexpected error: {exc!r}", retryable=False)))
            continue
        handed = _stage_key(delivery.pk, delivery.attempts, "handed")
        outcomes.append((delivery, attempt, provider.name, message_id, None))
    if handed:
        cache.set(handed, 1, timeout=STAGE_MARK_SECONDS)
    retry = []
    finished = timezone.now()
    for delivery, attempt, provider_name, message_id, error in outcomes:
        delivery.provider = provider_name or delivery.provider
        attempt.finished_at = finished
        if error is None:
            attempt.outcome = DeliveryAttempt.Outcome.SENT
            delivery.status, delivery.sent_at, delivery.last_error = Delivery.Status.SENT, finished, ""
            delivery.provider_message_id = (message_id or "")[:100]
            continue
        again = isinstance(error, _OutOfTime) or (error.retryable and delivery.attempts < MAX_ATTEMPTS)
        attempt.outcome = DeliveryAttempt.Outcome.RETRY if again else DeliveryAttempt.Outcome.FAILED
        attempt.error = delivery.last_error = str(error)[:500]
        delivery.status = Delivery.Status.PENDING if again else Delivery.Status.FAILED
        if again:
            retry.append((delivery.pk, 0 if isinstance(error, _OutOfTime) else retry_delay(delivery), str(error)))
    with transaction.atomic():
        # Conditional on still holding them: should the sweep have taken one over meanwhile, its decision stands.
        _save_grouped(Delivery, [o[0] for o in outcomes], ["status", "provider", "sent_at", "last_error"], sending_task=token)
        _save_message_ids([o[0] for o in outcomes])
        _save_grouped(
            DeliveryAttempt, [o[1] for o in outcomes], ["outcome", "error", "finished_at"], outcome=DeliveryAttempt.Outcome.IN_PROGRESS
        )
    return retry


@dataclass(frozen=True)
class StuckSettled:
    sent: int = 0  # the provider had accepted them: recorded as sent
    resent: int = 0  # never reached the provider: queued again
    unknown: int = 0  # may or may not have gone out: never sent again, shown as such in the outbox


def deliveries_settle_stuck(*, now: datetime | None = None, limit: int = 1000) -> StuckSettled:
    """The beat sweep for deliveries left `sending` by a worker that died whole (its tasks return only after the
    broker's visibility timeout): each stuck longer than DELIVERY_STUCK_AFTER_SECONDS is settled by _settle."""
    now = now or timezone.now()
    token = f"sweep-{uuid.uuid4().hex}"
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        # Rows another sweep or a task is deciding right now are skipped, never waited for: a waiter's lock would make
        # the task the sweep queues skip its delivery (SKIP LOCKED in _claim) and leave it unsent.
        candidates = list(
            Delivery._base_manager.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.SENDING)
            .filter(models.Q(sending_since__lt=now - _stuck_after()) | models.Q(sending_since__isnull=True))
            .order_by("sending_since")
            .values_list("pk", flat=True)[:limit]
        )
        stuck = _take_over(candidates, now=now, token=token)
        _save_grouped(DeliveryAttempt, _settle(stuck, now), ["outcome", "error", "finished_at"])
        _save_grouped(Delivery, stuck, ["status", "sent_at", "last_error", "sending_since", "sending_task"], sending_task=token)
        resend = [d.pk for d in stuck if d.status == Delivery.Status.PENDING]
        if resend:
            transaction.on_commit(lambda: _queue(resend))
    settled = StuckSettled(
        sent=sum(d.status == Delivery.Status.SENT for d in stuck),
        resent=len(resend),
        unknown=sum(d.status == Delivery.Status.UNKNOWN for d in stuck),
    )
    if stuck:
        logger.warning("Stuck deliveries settled: %s", settled)
    return settled


def delivery_send(*, delivery_id: int, task_id: str = "") -> None:
    """Hand one delivery to its provider. TryAgain on a temporary error while attempts remain."""
    for _delivery_id, delay, error in deliveries_send(delivery_ids=[delivery_id], task_id=task_id):
        raise TryAgain(error, delay)


def delivery_report(*, provider: str, provider_message_id: str, delivered: bool, error: str = "") -> Delivery | None:
    """A provider's delivery report. None when no delivery of ours has that id (the caller answers 403)."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .filter(provider=provider, provider_message_id=provider_message_id)
            .exclude(provider_message_id="")
            .first()
        )
        if delivery is None:
            return None
        if delivered:
            delivery.status = Delivery.Status.DELIVERED
            delivery.delivered_at = timezone.now()
        else:
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = error[:500] or _("The provider could not deliver it.")
        delivery.save(update_fields=["status", "delivered_at", "last_error"])
    return delivery


# --- visit reminders ---------------------------------------------------------------------------


def visit_reminders_queue(*, now: datetime | None = None) -> int:
    """The beat sweep for visits: a confirm request (default 24 h before) and a short reminder (2 h).

    Each is written once per visit (a unique key: a second sweep adds nothing); a
    visit booked after a reminder's time gets only the later one. Delivery goes
    through the usual dispatch, which skips visits cancelled or moved meanwhile.
    """
    from appointments.models import Appointment, BookingRules

    now = now or timezone.now()
    rules = {r.clinic_id: r for r in BookingRules.objects.all()}
    default = BookingRules()
    longest = max(
        [default.confirm_hours_before, default.remind_hours_before]
        + [max(r.confirm_hours_before, r.remind_hours_before) for r in rules.values()]
    )
    visits = Appointment.objects.filter(
        status__in=Appointment.UPCOMING, starts_at__gt=now, starts_at__lte=now + timedelta(hours=longest)
    ).select_related("patient__guardian")
    rows = []
    for visit in visits:
        rule = rules.get(visit.clinic_id, default)
        holder = visit.patient.guardian if visit.patient.guardian_id else visit.patient
        if holder.user_id is None:
            continue  # no account: the clinic reaches this person by phone
        due = None
        for kind, hours in ((Notification.Kind.REMINDER, rule.remind_hours_before), (Notification.Kind.CONFIRM, rule.confirm_hours_before)):
            moment = visit.starts_at - timedelta(hours=hours)
            if hours and moment <= now and visit.created_at <= moment:
                due = kind
                break  # the later reminder replaces an earlier one that is overdue
        if due is not None:
            rows.append(
                Notification(
                    clinic_id=visit.clinic_id, recipient_id=holder.user_id, kind=due, visit=visit, reason="visit", key=f"{due}:{visit.pk}"
                )
            )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def visit_notifications_cancel(*, visit_id: int) -> int:
    """A visit was cancelled or moved: its reminders still waiting are dropped (dispatch would skip them anyway)."""
    return Notification.objects.filter(visit_id=visit_id, status=Notification.Status.PENDING).update(status=Notification.Status.CANCELLED)


# --- replies to the confirm request by SMS --------------------------------------------------------

CONFIRM_WORDS = frozenset({"1", "да", "yes", "подтверждаю", "ok", "ок"})  # "ок" in Cyrillic: the same word typed on a Russian keyboard
CANCEL_WORDS = frozenset({"2", "нет", "no", "отмена", "отменить", "cancel"})
REPLY_ACTION = "visit.sms_reply"


@dataclass(frozen=True)
class SmsReply:
    """What a patient's SMS answer did, and the words to text back (empty: answer nothing)."""

    outcome: str  # confirmed | already_confirmed | cancelled | passed (to the thread) | refused | no_visit | duplicate
    answer: str
    visit: Any = None


def _sender_e164(phone: str) -> str:
    """The sender's number as deliveries keep it (E.164), or '' when it is no phone number: the sign-in form's parser."""
    from accounts.destinations import parse_destination

    try:
        destination = parse_destination(phone, region=settings.PHONENUMBER_DEFAULT_REGION)
    except ValidationError:
        return ""
    return destination.value if destination.is_phone else ""


def _reply_word(text: str) -> str:
    """'Да!', ' NO ', '«1»' → the keyword, as typed on any phone."""
    return text.strip().strip(" .,!?;:\"'«»()").casefold()


def sms_reply_handle(*, provider: str, phone: str, text: str, provider_message_id: str) -> SmsReply:
    """A patient's SMS answer to the confirm request: 1 confirms, 2 cancels, exactly as the link in it would.

    The sender's number is the only key: the reply applies to the newest confirm
    request texted to that number whose visit is still ahead, acting as the
    account holder who got it (so a late cancellation is flagged late and the
    freed slot is offered). Every handled reply is audited with its words; the
    same provider message seen again changes nothing (a replayed request).
    """
    from appointments import services as visits
    from appointments.models import Appointment
    from audit.models import AuditEvent
    from audit.services import audit_record
    from messaging.services import SendingTooFast, send_message
    from notifications.selectors import confirm_request_to
    from patients.services import ConsentOutdated, ConsentRequired

    delivery = confirm_request_to(provider=provider, phone=_sender_e164(phone), now=timezone.now())
    visit = delivery.notification.visit if delivery else None
    actor = visit.patient.account_holder.user if visit else None  # as the reminder's link page acts
    with translation.override(settings.LANGUAGE_CODE):
        if actor is None:
            return SmsReply("no_visit", _("No upcoming visit to confirm from this number."))
        seen = AuditEvent.objects.filter(actor=actor, action=REPLY_ACTION, data__message_id=provider_message_id)
        if provider_message_id and seen.exists():
            return SmsReply("duplicate", "", visit)

        def note(outcome: str) -> None:
            data = {"reply": text.strip()[:160], "outcome": outcome, "provider": provider, "message_id": provider_message_id[:100]}
            audit_record(actor=actor, action=REPLY_ACTION, clinic=visit.clinic, patient=visit.patient, target=visit, data=data)

        word = _reply_word(text)
        local = timezone.localtime(visit.starts_at, visit.clinic.tz)
        facts = {"clinic": visit.clinic.name, "when": formats.date_format(local, "j E, H:i")}
        try:
            with transaction.atomic():
                if word in CANCEL_WORDS:
                    cancelled = visits.visit_cancel(actor=actor, visit=visit, reason=_("Cancelled by SMS reply"))
                    outcome, answer = "cancelled", _("%(clinic)s: visit on %(when)s cancelled.") % facts
                    if cancelled.cancelled_late:
                        answer = (
                            _("%(clinic)s: visit on %(when)s cancelled (late: less than the clinic's notice before the visit).") % facts
                        )
                elif word in CONFIRM_WORDS and visit.status == Appointment.Status.CONFIRMED:
                    outcome, answer = "already_confirmed", _("%(clinic)s: visit on %(when)s is already confirmed.") % facts
                elif word in CONFIRM_WORDS:
                    visits.visit_confirm(actor=actor, visit=visit)
                    outcome, answer = "confirmed", _("%(clinic)s: visit on %(when)s confirmed. Thank you!") % facts
                else:  # words for the clinic ("running 10 minutes late"): they reach the operators as a message
                    thread = _reply_thread(visit)
                    send_message(thread=thread, sender=actor, text=text, client_msg_id=f"sms-{provider_message_id}"[:64])
                    outcome = "passed"
                    answer = _("%(clinic)s got your message. To confirm the visit reply 1, to cancel reply 2. Chat: %(link)s") % {
                        **facts,
                        "link": settings.SITE_URL + reverse("messaging:portal-thread", args=[thread.pk]),
                    }
                note(outcome)
        except (ValidationError, PermissionDenied, SendingTooFast, ConsentRequired, ConsentOutdated) as exc:  # changed meanwhile: say why
            outcome, answer = "refused", " ".join(getattr(exc, "messages", [str(exc)]))
            note(outcome)
    return SmsReply(outcome, answer, visit)


def _reply_thread(visit: Any) -> Any:
    """Where an SMS reply's words go: the visit's conversation, else the patient's thread with the clinic."""
    from messaging.services import thread_open

    if visit.thread_id:
        return visit.thread
    thread, _created = thread_open(patient=visit.patient, clinic=visit.clinic, actor=None)
    return thread


# --- the patient's own settings and reminders ------------------------------------------------------


def preference_update(*, user: Any, sms: bool, email: bool, promotions: bool, opted_out: bool) -> Preference:
    """How the person wants to be reached; nothing at all wins over the rest."""
    preference, _created = Preference.objects.update_or_create(
        user=user, defaults={"sms": sms, "email": email, "promotions": promotions, "opted_out": opted_out}
    )
    return preference


def personal_reminder_add(
    *, actor: Any, patient: Any, clinic: Any, text: str, next_at: datetime, repeat: str, repeat_until: Any = None
) -> PersonalReminder:
    """A reminder the patient sets for themselves or a dependant, sent as the clinic's notice at that time."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from clinics.tenancy import portal_holder_id
    from patients.services import consent_require

    if portal_holder_id(actor) != patient.account_holder.pk:
        raise PermissionDenied(_("You can set reminders only for yourself and your family."))
    text = " ".join(text.split())
    if not text:
        raise ValidationError({"text": _("Write what to remind about.")})
    if next_at <= timezone.now():
        raise ValidationError({"next_at": _("Choose a time in the future.")})
    furthest = timezone.now() + timedelta(days=settings.REMINDER_HORIZON_DAYS)
    if next_at > furthest:
        raise ValidationError(
            {"next_at": _("A reminder can be set at most %(days)s days ahead.") % {"days": settings.REMINDER_HORIZON_DAYS}}
        )
    if repeat_until and repeat_until > furthest.date():
        raise ValidationError(
            {"repeat_until": _("A reminder can repeat at most %(days)s days ahead.") % {"days": settings.REMINDER_HORIZON_DAYS}}
        )
    if repeat != PersonalReminder.Repeat.ONCE and repeat_until and repeat_until < timezone.localtime(next_at, clinic.tz).date():
        raise ValidationError({"repeat_until": _("The last day must not be before the first reminder.")})
    with transaction.atomic():
        consent_require(patient=patient, clinic=clinic)
        return PersonalReminder.objects.create(
            patient=patient, clinic=clinic, text=text[:200], next_at=next_at, repeat=repeat, repeat_until=repeat_until
        )


def personal_reminder_cancel(*, actor: Any, reminder: PersonalReminder) -> None:
    from django.core.exceptions import PermissionDenied

    from clinics.tenancy import portal_holder_id

    if portal_holder_id(actor) != reminder.patient.account_holder.pk:
        raise PermissionDenied(_("This reminder is not yours."))
    with transaction.atomic():
        PersonalReminder.objects.filter(pk=reminder.pk).update(is_active=False)
        Notification.objects.filter(personal_reminder=reminder, status=Notification.Status.PENDING).update(
            status=Notification.Status.CANCELLED
        )


REPEAT_STEP = {PersonalReminder.Repeat.DAILY: timedelta(days=1), PersonalReminder.Repeat.WEEKLY: timedelta(days=7)}


def personal_reminders_queue(*, now: datetime | None = None) -> int:
    """The beat sweep for patients' own reminders: one notice per due time, then the next time or the end."""
    now = now or timezone.now()
    queued = 0
    with transaction.atomic():
        due = list(
            PersonalReminder.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(is_active=True, next_at__lte=now)
            .select_related("patient__guardian", "patient", "clinic")[:500]
        )
        for reminder in due:
            holder = reminder.patient.guardian if reminder.patient.guardian_id else reminder.patient
            if holder.user_id:
                _n, created = Notification.objects.get_or_create(
                    key=f"personal:{reminder.pk}:{int(reminder.next_at.timestamp())}",
                    defaults={
                        "clinic": reminder.clinic,
                        "recipient_id": holder.user_id,
                        "kind": Notification.Kind.PERSONAL,
                        "personal_reminder": reminder,
                        "reason": "personal",
                    },
                )
                queued += created
            step = REPEAT_STEP.get(reminder.repeat)
            following = reminder.next_at + step if step else None
            while following is not None and following <= now:  # the sweep was down for a while: do not send a backlog
                following += step
            ends = reminder.repeat_until
            if following is None or (ends and timezone.localtime(following, reminder.clinic.tz).date() > ends):
                reminder.is_active = False
            else:
                reminder.next_at = following
            reminder.save(update_fields=["is_active", "next_at"])
    return queued
