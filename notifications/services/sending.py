"""Sending: hand deliveries to their providers at most once, settle what a dead worker left, record reports.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from notifications import kinds
from notifications.models import Delivery, DeliveryAttempt
from notifications.providers import provider_for
from notifications.services.bulk import save_grouped, save_message_ids
from notifications.services.codes import code_text_to_send
from notifications.sms import SmsError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# How long the "in flight" / "handed to the provider" marks of a delivery live (longer than any redelivery delay).
STAGE_MARK_SECONDS = 2 * 24 * 3600
DELIVERY_BATCH = 50


class TryAgain(Exception):
    """A temporary provider error: the task retries after `delay` seconds (see retry_delay)."""

    def __init__(self, error: str, delay: int) -> None:
        super().__init__(error)
        self.delay = delay


def retry_delay(delivery: Delivery) -> int:
    """A growing pause before the next attempt: 15 s, 30 s … up to 15 min; a sign-in code, which lives
    five minutes, is tried again within seconds."""
    attempts = int(delivery.attempts)
    if delivery.notification.login_code_id:
        return int(2**attempts)
    return int(min(15 * 2 ** (attempts - 1), 900))


def deliveries_queue(delivery_ids: list[int]) -> None:
    """Deliveries go to the workers in batches: one task claims and records many at a fixed cost."""
    from notifications.tasks import deliver, deliver_batch

    if len(delivery_ids) <= 2:
        for delivery_id in delivery_ids:
            deliver.delay(delivery_id)
        return
    for start in range(0, len(delivery_ids), DELIVERY_BATCH):
        deliver_batch.delay(delivery_ids[start : start + DELIVERY_BATCH])


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
        save_grouped(DeliveryAttempt, _settle(stuck, now), ["outcome", "error", "finished_at"])
        save_grouped(Delivery, stuck, ["status", "sent_at", "last_error", "sending_since", "sending_task"], sending_task=token)
        settled = {d.pk: d for d in stuck}
        rows = [settled.get(d.pk, d) for d in rows]
        unwanted: list[Delivery] = []
        for delivery in rows:
            if delivery.status != Delivery.Status.PENDING:
                continue  # held by a live task, sent, delivered, failed or unknown: a duplicate task does nothing
            reason = kinds.rules_for(delivery.notification.kind).unwanted(delivery.notification, now)
            if reason:
                delivery.status, delivery.last_error = Delivery.Status.FAILED, reason
                unwanted.append(delivery)
                continue
            claimed.append((delivery, DeliveryAttempt(delivery=delivery, number=delivery.attempts + 1, started_at=now)))
        save_grouped(Delivery, unwanted, ["status", "last_error"], status=Delivery.Status.PENDING)
        pending = [d.pk for d, _a in claimed]
        taken = Delivery._base_manager.filter(pk__in=pending, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1, sending_since=now, sending_task=token
        )
        if taken != len(pending):  # another task claimed some between the read and the UPDATE (no row locks on SQLite)
            ours = set(Delivery._base_manager.filter(pk__in=pending, sending_task=token, sending_since=now).values_list("pk", flat=True))
            claimed = [(d, a) for d, a in claimed if d.pk in ours]
        for delivery, _attempt in claimed:
            delivery.status, delivery.attempts = Delivery.Status.SENDING, delivery.attempts + 1
            delivery.sending_since, delivery.sending_task = now, token
        DeliveryAttempt.objects.bulk_create([a for _d, a in claimed])
    return claimed


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
    outcomes: list[tuple[Delivery, DeliveryAttempt, str, str | None, SmsError | None]] = []
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
                destination=delivery.destination, subject=delivery.subject, text=code_text_to_send(delivery), key=delivery.idempotency_key
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
        save_grouped(Delivery, [o[0] for o in outcomes], ["status", "provider", "sent_at", "last_error"], sending_task=token)
        save_message_ids([o[0] for o in outcomes])
        save_grouped(
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
        save_grouped(DeliveryAttempt, _settle(stuck, now), ["outcome", "error", "finished_at"])
        save_grouped(Delivery, stuck, ["status", "sent_at", "last_error", "sending_since", "sending_task"], sending_task=token)
        resend = [d.pk for d in stuck if d.status == Delivery.Status.PENDING]
        if resend:
            transaction.on_commit(lambda: deliveries_queue(resend))
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
    return delivery  # type: ignore[no-any-return]  # .first() of a typed queryset: django-stubs says Any
