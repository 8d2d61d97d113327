"""A whole worker killed mid-batch (its process group, as an OOM kill or a lost machine would): nothing stranded, nothing twice.

Unlike test_worker_killed (one prefork child killed, its parent gives the task back at
once), nobody is left to give the batches back: Redis hands them out again only after
the visibility timeout. The beat sweep must settle the deliveries they left `sending`
(`settle_stuck_deliveries`, run here on the new worker; the threshold is short in its
environment because the worker runs on the real clock). SMS.ru is the HTTP double of
test_worker_killed, holding every request after the first ones, so each child of the
first worker is killed while SMS.ru has one of its SMS.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation

from clinic_crm.celery import app as celery_app
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.tasks import deliver_batch, dispatch_notifications, settle_stuck_deliveries
from tests import factories as f
from tests.notifications.test_worker import _wait_for
from tests.notifications.test_worker_killed import FakeSmsRu, _children, start_worker, stop_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or connection.vendor != "postgresql",
        reason="a worker process cannot see SQLite's test database or the in-memory broker: needs PostgreSQL and Redis (CI has both)",
    ),
]

NOTICES = int(os.environ.get("WORKER_GROUP_KILL_NOTICES", "120"))  # batches of 50: two running when killed, the rest queued
ANSWERED = 30  # SMS.ru answers this many, then holds every request until the kill
CHILDREN = 2
STUCK_AFTER = 15  # DELIVERY_STUCK_AFTER_SECONDS of the new worker
SETTLED = {Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.UNKNOWN}


@pytest.fixture
def sms_ru() -> Iterator[FakeSmsRu]:
    fake = FakeSmsRu(hold=lambda number: number > ANSWERED)
    yield fake
    fake.close()


@pytest.fixture
def broker(settings) -> Iterator[None]:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    try:
        yield
    finally:
        celery_app.control.purge()
        with celery_app.connection_for_write() as conn:  # the killed worker's unacknowledged batches: no later run may get them
            conn.default_channel.client.delete("unacked", "unacked_index")
        celery_app.conf.task_always_eager = True
        connection.close()


def _broker_idle() -> bool:
    with celery_app.connection_for_write() as conn:
        queued = conn.default_channel.client.llen("celery")
    active = celery_app.control.inspect(timeout=1).active() or {}
    return queued == 0 and bool(active) and not any(active.values())


def test_a_worker_killed_whole_mid_batch_strands_nothing_and_sends_nothing_twice(alpha, sms_ru, broker):
    threads = [
        f.ThreadFactory(clinic=alpha.clinic, patient=f.PatientFactory(phone=f"+7916888{n:04d}"), last_seq=1, last_public_seq=1)
        for n in range(NOTICES)
    ]  # each with an answer the patient has not read (no e-mail addresses: one SMS each)
    Notification.objects.bulk_create(  # what send_message writes for an offline patient; urgent: whatever the hour
        Notification(clinic=alpha.clinic, recipient=t.patient.user, thread=t, kind=Notification.Kind.MESSAGE, urgent=True) for t in threads
    )
    first = start_worker(sms_ru.url, concurrency=CHILDREN)
    second = None
    try:
        dispatch_notifications.delay(list(Notification.objects.values_list("pk", flat=True)))
        assert _wait_for(lambda: sms_ru.held == CHILDREN, seconds=120), (
            len(sms_ru.requests),
            sms_ru.held,
            Counter(Delivery.objects.values_list("status", flat=True)),
        )
        assert len(_children(first.pid)) == CHILDREN
        os.killpg(first.pid, signal.SIGKILL)  # the whole group: parent and children, nobody gives the batches back
        first.wait()
        killed_at = time.monotonic()
        sms_ru.hold = lambda number: False
        dead_batches = {
            task: list(Delivery.objects.filter(sending_task=task).values_list("pk", flat=True))
            for task in Delivery.objects.filter(status=Delivery.Status.SENDING).values_list("sending_task", flat=True).distinct()
        }
        assert len(dead_batches) == CHILDREN and Delivery.objects.count() == NOTICES

        second = start_worker(sms_ru.url, concurrency=CHILDREN, DELIVERY_STUCK_AFTER_SECONDS=str(STUCK_AFTER))
        ticks, taken_over = [], []

        def settled() -> bool:
            if not ticks or time.monotonic() - ticks[-1] > 2:  # the beat's tick, more often than its minute
                settle_stuck_deliveries.delay()
                ticks.append(time.monotonic())
            left = Counter(Delivery.objects.exclude(status__in=SETTLED).values_list("status", flat=True))
            if not left[Delivery.Status.SENDING] and not taken_over:
                taken_over.append(time.monotonic() - killed_at)
            return not left

        assert _wait_for(settled, seconds=STUCK_AFTER + 120), Counter(Delivery.objects.values_list("status", flat=True))
        took = time.monotonic() - killed_at

        # The dead worker's batches come back after the visibility timeout, as Redis would give them: nothing changes.
        before = list(Delivery.objects.order_by("pk").values_list("pk", "status", "attempts"))
        requests = len(sms_ru.requests)
        for task, ids in dead_batches.items():
            deliver_batch.apply_async((ids,), task_id=task)
        assert _wait_for(_broker_idle, seconds=60)
        assert list(Delivery.objects.order_by("pk").values_list("pk", "status", "attempts")) == before
        assert len(sms_ru.requests) == requests
    finally:
        for process in (first, second):
            if process is not None:
                stop_worker(process)

    per_phone = Counter("+" + r["to"] for r in sms_ru.requests)
    deliveries = list(Delivery.objects.all())
    statuses = Counter(d.status for d in deliveries)
    assert max(per_phone.values()) == 1, "an SMS was handed to SMS.ru twice"
    assert {d.destination for d in deliveries if d.status != Delivery.Status.FAILED} == set(per_phone)
    assert statuses == {Delivery.Status.SENT: NOTICES - CHILDREN, Delivery.Status.UNKNOWN: CHILDREN}, statuses  # the held ones
    with translation.override(settings.LANGUAGE_CODE):
        reason = translation.gettext(
            "The worker stopped while sending; whether the SMS went out is unknown. Not sent again, to avoid a duplicate."
        )
    assert {d.last_error for d in deliveries if d.status == Delivery.Status.UNKNOWN} == {reason}
    cut = DeliveryAttempt.objects.filter(outcome=DeliveryAttempt.Outcome.RETRY).count()
    print(
        f"\n{NOTICES} notices, whole worker killed mid-batch: none left `sending` {taken_over[0]:.1f} s after the kill, "
        f"all settled after {took:.1f} s; {dict(statuses)}; {cut} cut off by a batch's time, {len(sms_ru.requests)} requests"
    )
