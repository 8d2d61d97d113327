"""The sweep for deliveries a worker that died whole left `sending`, driven through its beat task on a controlled clock.

A worker whose process group dies leaves its batch `sending`, and the broker gives
its tasks back only after the visibility timeout. After DELIVERY_STUCK_AFTER_SECONDS
the sweep settles each delivery by its attempt rows and the marks: recorded as sent
when the provider had it, sent now when it never reached the provider, "unknown
whether sent" when it may have (never sent twice). The dead worker's task coming back
later changes nothing.
"""

import threading
from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs

import httpx
import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test import TestCase
from django.utils import timezone, translation

from appointments import reminders
from messaging.services import send_message
from notifications import services
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import sending
from notifications.tasks import deliver_batch, settle_stuck_deliveries
from tests import factories as f

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """The whole worker dies: nothing of it runs any more, not even an `except Exception`."""


def _phones(calls) -> list[str]:
    return sorted("+" + parse_qs(request.content.decode())["to"][0] for request in calls)


def _accept(route, calls, *, die_at=None):
    def answer(request):
        calls.append(request)
        if die_at is not None and len(calls) == die_at:
            raise WorkerKilled  # while SMS.ru has this one: the worker never learns the answer
        return httpx.Response(
            200, json={"status": "OK", "sms": {"x": {"status": "OK", "status_code": 100, "sms_id": f"stuck-{len(calls)}"}}}
        )

    route.side_effect = answer


@pytest.fixture
def batch(alpha):
    """Four urgent notices to four patients, dispatched into four SMS deliveries (the batch task not run yet)."""
    for n in range(4):
        thread = f.ThreadFactory(clinic=alpha.clinic, patient=f.PatientFactory(phone=f"+7916777000{n}"))
        send_message(thread=thread, actor=alpha.operator, text=f"Result {n} is ready")
    Notification.objects.update(urgent=True, not_before=None)
    with mock.patch.object(sending, "deliveries_queue"):  # queued by each test itself, also where on-commit callbacks run
        ids = services.notifications_dispatch_batch(notification_ids=list(Notification.objects.values_list("pk", flat=True)))
    assert len(ids) == 4
    return ids


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now().replace(microsecond=0), tick=False) as traveller:
        yield traveller


def _die_in_third_call(batch, smsru):
    """The worker accepts two SMS, dies while SMS.ru holds the third, never reaches the fourth."""
    calls = []
    _accept(smsru, calls, die_at=3)
    with pytest.raises(WorkerKilled):
        deliver_batch.apply_async((batch,), task_id="dead-worker-task")
    assert list(Delivery.objects.filter(pk__in=batch).values_list("status", flat=True)) == ["sending"] * 4
    _accept(smsru, calls)
    return calls


def _sweep():
    with TestCase.captureOnCommitCallbacks(execute=True):  # the sweep queues what it sends again when it commits
        return settle_stuck_deliveries.delay().get()


def _statuses(ids):
    return list(Delivery.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True))


def test_the_sweep_settles_a_dead_workers_batch_by_its_marks_and_sends_nothing_twice(alpha, batch, smsru, clock, settings):
    calls = _die_in_third_call(batch, smsru)
    clock.shift(timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS - 1))
    assert _sweep() == {"sent": 0, "resent": 0, "unknown": 0}  # a live batch may still be at work
    assert _statuses(batch) == ["sending"] * 4

    clock.shift(timedelta(seconds=2))
    assert _sweep() == {"sent": 2, "resent": 1, "unknown": 1}

    first, second, third, fourth = Delivery.objects.filter(pk__in=batch).order_by("pk")
    assert [first.status, second.status, third.status, fourth.status] == ["sent", "sent", "unknown", "sent"]
    assert _phones(calls) == sorted(d.destination for d in (first, second, third, fourth))  # each handed over once
    with translation.override(django_settings.LANGUAGE_CODE):
        reason = translation.gettext(
            "The worker stopped while sending; whether the SMS went out is unknown. Not sent again, to avoid a duplicate."
        )
    assert third.last_error == reason
    assert [(a.outcome, a.error) for a in third.history.all()] == [(DeliveryAttempt.Outcome.INTERRUPTED, reason)]
    assert [a.outcome for a in fourth.history.all()] == ["interrupted", "sent"]  # not reached, then sent by the sweep
    assert [a.outcome for a in first.history.all()] == ["sent"] and first.sent_at == timezone.now()


def test_a_second_sweep_and_the_dead_workers_task_coming_back_an_hour_later_change_nothing(alpha, batch, smsru, clock, settings):
    calls = _die_in_third_call(batch, smsru)
    clock.shift(timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS + 1))
    _sweep()
    settled = _statuses(batch)
    attempts = DeliveryAttempt.objects.count()

    assert _sweep() == {"sent": 0, "resent": 0, "unknown": 0}
    clock.shift(timedelta(hours=1))  # the broker's visibility timeout has passed: the same task comes back
    with TestCase.captureOnCommitCallbacks(execute=True):
        deliver_batch.apply_async((batch,), task_id="dead-worker-task")

    assert _statuses(batch) == settled == ["sent", "sent", "unknown", "sent"]
    assert DeliveryAttempt.objects.count() == attempts and len(calls) == 4


def test_the_dead_workers_task_back_before_the_sweep_settles_it_the_same_way(alpha, batch, smsru, clock):
    """A prefork child killed alone: its parent gives the same task back at once, and it may decide without waiting."""
    calls = _die_in_third_call(batch, smsru)
    with TestCase.captureOnCommitCallbacks(execute=True):
        deliver_batch.apply_async((batch,), task_id="dead-worker-task")
    assert _statuses(batch) == ["sent", "sent", "unknown", "sent"]
    assert len(calls) == 4 and _sweep() == {"sent": 0, "resent": 0, "unknown": 0}


def test_another_task_for_a_stuck_delivery_leaves_it_to_the_sweep_until_the_threshold(alpha, batch, smsru, clock, settings):
    calls = _die_in_third_call(batch, smsru)
    clock.shift(timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS - 1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        deliver_batch.delay(batch)  # a different task: it cannot know whether the holder is alive
    assert _statuses(batch) == ["sending"] * 4 and len(calls) == 3

    clock.shift(timedelta(seconds=2))  # now it is stuck: a task may settle it as the sweep would
    with TestCase.captureOnCommitCallbacks(execute=True):
        deliver_batch.delay(batch)
    assert _statuses(batch) == ["sent", "sent", "unknown", "sent"] and len(calls) == 4


def test_a_stuck_delivery_whose_provider_id_was_written_is_recorded_as_sent(alpha, batch, smsru, clock, settings):
    Delivery.objects.filter(pk=batch[0]).update(
        status="sending", attempts=1, sending_since=timezone.now(), sending_task="gone", provider="smsru", provider_message_id="kept-1"
    )
    DeliveryAttempt.objects.create(delivery_id=batch[0], number=1, started_at=timezone.now())
    clock.shift(timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS + 1))

    assert _sweep() == {"sent": 1, "resent": 0, "unknown": 0}
    delivery = Delivery.objects.get(pk=batch[0])
    assert (delivery.status, delivery.provider_message_id, smsru.call_count) == ("sent", "kept-1", 0)
    assert [a.outcome for a in delivery.history.all()] == ["sent"]


def test_a_stuck_delivery_for_a_visit_that_is_gone_is_not_sent_late(alpha, visit, smsru, clock, settings):
    from appointments.models import Visit

    reminders.visit_reminders_queue(now=visit.starts_at - timedelta(hours=23))
    ids = services.notifications_dispatch_batch(
        notification_ids=list(Notification.objects.filter(visit=visit).values_list("pk", flat=True)),
        now=visit.starts_at - timedelta(hours=23),
    )
    Delivery.objects.filter(pk__in=ids).update(status="sending", attempts=1, sending_since=timezone.now(), sending_task="gone")
    Visit.objects.filter(pk=visit.pk).update(status=Visit.Status.CANCELLED)
    clock.shift(timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS + 1))

    assert _sweep()["resent"] == len(ids)  # never reached the provider: it goes through the usual checks again
    assert set(_statuses(ids)) == {"failed"} and smsru.call_count == 0


def test_the_sweep_is_a_beat_task_and_no_broker_countdown_outlives_the_visibility_timeout(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["settle-stuck-deliveries"]
    assert entry["task"] == "notifications.tasks.settle_stuck_deliveries" and entry["schedule"] <= 60
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    longest = max(services.retry_delay(Delivery(notification=Notification(), attempts=n)) for n in range(1, services.MAX_ATTEMPTS + 1))
    assert longest < visibility / 2  # a reserved countdown task runs long before Redis would hand it out again
    assert settings.DELIVERY_STUCK_AFTER_SECONDS > 10 * settings.PROVIDER_TIMEOUT_SECONDS
    assert visibility > settings.DELIVERY_STUCK_AFTER_SECONDS  # the sweep acts long before the dead worker's tasks return


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two sweeps at once need row locks between two connections: PostgreSQL")
def test_two_sweeps_at_once_settle_each_delivery_once(alpha, batch, smsru, clock, settings, monkeypatch):
    """A second sweep while the first is deciding takes nothing over, and waits for nothing."""
    calls = _die_in_third_call(batch, smsru)
    clock.shift(timedelta(seconds=settings.DELIVERY_STUCK_AFTER_SECONDS + 1))
    settle = sending._settle
    holding, second_done, results = threading.Event(), threading.Event(), {}

    def first_holds_its_rows(stuck, now):
        if stuck:
            holding.set()
            assert second_done.wait(30)
        return settle(stuck, now)

    def first_sweep():
        try:
            results["first"] = settle_stuck_deliveries.delay().result
        finally:
            connection.close()

    monkeypatch.setattr(sending, "_settle", first_holds_its_rows)
    first = threading.Thread(target=first_sweep)
    first.start()
    assert holding.wait(30)
    with TestCase.captureOnCommitCallbacks(execute=True):
        results["second"] = settle_stuck_deliveries.delay().result
    second_done.set()
    first.join(30)

    assert results == {"first": {"sent": 2, "resent": 1, "unknown": 1}, "second": {"sent": 0, "resent": 0, "unknown": 0}}
    assert _statuses(batch) == ["sent", "sent", "unknown", "sent"] and len(calls) == 4
