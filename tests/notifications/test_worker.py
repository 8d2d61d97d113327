"""The pipeline through a real Celery worker: tasks travel through the broker (Redis in CI), not eagerly.

The worker runs on the real clock, so the clinic is put in a zone where it is now day
(or night, for quiet hours) rather than the test moving time.
"""

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import before_task_publish, task_postrun
from django.core import mail
from django.db import connection
from django.utils import timezone

from appointments.models import Visit
from appointments.tasks import queue_visit_reminders
from clinic_crm.celery import app as celery_app
from notifications.models import Delivery, Notification, Preference
from notifications.tasks import dispatch_due_notifications
from patients.services import consent_withdraw
from tests import factories as f


class TaskLedger:
    """Every task published from this process (by the test or by a task in the worker's threads) and
    every run that finished. When each publication has had its run, the worker is done: any further
    send would need a task still to run, so "nothing more arrives" is then a fact, not a pause."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()

    def on_publish(self, sender=None, headers=None, **kwargs) -> None:
        with self._lock:
            self.published[headers["id"]] += 1  # a retry publishes the same id again

    def on_finish(self, sender=None, task_id=None, **kwargs) -> None:
        with self._lock:
            self.finished[task_id] += 1

    def settled(self) -> bool:
        with self._lock:
            return bool(self.published) and all(self.finished[task_id] >= n for task_id, n in self.published.items())


@pytest.fixture
def worker(settings):
    """A worker in threads of this process (so respx sees its HTTP), fed by the real broker; its ledger."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    ledger = TaskLedger()
    before_task_publish.connect(ledger.on_publish, weak=False)
    task_postrun.connect(ledger.on_finish, weak=False)
    try:
        with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
            yield ledger
    finally:
        before_task_publish.disconnect(ledger.on_publish)
        task_postrun.disconnect(ledger.on_finish)
        celery_app.conf.task_always_eager = True
        connection.close()


def _wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_offline_message_reaches_the_provider_once_per_channel_through_the_worker(alpha, offline_reply, smsru, worker):
    notification = offline_reply()
    Notification.objects.filter(pk=notification.pk).update(urgent=True, not_before=None)  # whatever the hour; the offline minutes are over

    dispatch_due_notifications.delay()

    assert _wait_for(lambda: Delivery.objects.filter(notification=notification, status="sent").count() == 2)
    assert _wait_for(worker.settled)  # every task the sweep set off has run: a duplicate would be in by now
    assert smsru.call_count == 1
    assert [m.to for m in mail.outbox] == [["anna@example.ru"]]
    assert Notification.objects.get(pk=notification.pk).status == "dispatched"


def _zone_where_it_is(*, night: bool) -> str:
    """A fixed-offset zone whose clock is now inside (or outside) the quiet hours 21:00–09:00: the worker uses the real clock."""
    for hours in range(-12, 15):
        name = f"Etc/GMT{-hours:+d}" if hours else "Etc/GMT"  # POSIX sign: Etc/GMT-3 is UTC+3
        hour = datetime.now(ZoneInfo(name)).hour
        if (hour >= 21 or hour < 9) == night:
            return name
    raise AssertionError("every zone cannot be on the same side of 21:00")


def _clinic_in(clinic, zone: str, *, offline_minutes: int | None = None) -> None:
    clinic.time_zone = zone
    if offline_minutes is not None:
        clinic.offline_notice_minutes = offline_minutes
    clinic.save()


def _texts(route) -> list[str]:
    return [parse_qs(call.request.content.decode())["msg"][0] for call in route.calls]


@pytest.mark.django_db(transaction=True)
def test_through_the_worker_a_burst_of_five_messages_is_one_sms(api, alpha, anna_thread, smsru, worker):
    _clinic_in(alpha.clinic, _zone_where_it_is(night=False), offline_minutes=0)
    Preference.objects.create(user=anna_thread.patient.user, email=False)
    api.force_authenticate(alpha.operator)
    for n in range(1, 6):
        assert api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": f"part {n} of your results"}, format="json").status_code == 201

    dispatch_due_notifications.delay()

    assert _wait_for(lambda: Delivery.objects.filter(status="sent").count() == 1)
    assert _wait_for(worker.settled)
    assert Notification.objects.filter(recipient=anna_thread.patient.user).count() == 1
    assert len(_texts(smsru)) == 1 and "part 5 of your results" in _texts(smsru)[0]


@pytest.mark.django_db(transaction=True)
def test_through_the_worker_quiet_hours_keep_the_notice_until_nine_in_the_clinics_zone(alpha, offline_reply, smsru, worker):
    _clinic_in(alpha.clinic, _zone_where_it_is(night=True))
    notification = offline_reply()
    Notification.objects.filter(pk=notification.pk).update(not_before=None)  # the offline minutes are over

    dispatch_due_notifications.delay()

    assert _wait_for(lambda: Notification.objects.get(pk=notification.pk).not_before is not None)
    assert _wait_for(worker.settled)
    notification.refresh_from_db()
    morning = timezone.localtime(notification.not_before, alpha.clinic.tz)
    assert notification.status == "pending" and (morning.hour, morning.minute) == (9, 0)
    assert notification.not_before > timezone.now() and smsru.call_count == 0 and not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reason", ["opted_out", "no_consent"])
def test_through_the_worker_opt_out_and_withdrawn_consent_skip(alpha, anna, offline_reply, smsru, worker, reason):
    notification = offline_reply()
    Notification.objects.filter(pk=notification.pk).update(urgent=True, not_before=None)
    if reason == "opted_out":
        Preference.objects.create(user=anna.user, opted_out=True)
    else:
        consent_withdraw(patient=anna, clinic=alpha.clinic, ip=None, user_agent="test")

    dispatch_due_notifications.delay()

    assert _wait_for(lambda: Notification.objects.get(pk=notification.pk).status == "skipped")
    assert _wait_for(worker.settled)
    assert Notification.objects.get(pk=notification.pk).skip_reason == reason
    assert smsru.call_count == 0 and not mail.outbox and not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_through_the_worker_the_reminder_sweep_asks_to_confirm_once_and_never_for_a_cancelled_visit(
    alpha, anna, anna_thread, smsru, worker
):
    _clinic_in(alpha.clinic, _zone_where_it_is(night=False))
    Preference.objects.create(user=anna.user, email=False)
    soon = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=23)
    kept = f.VisitFactory(doctor=alpha.doctor, patient=anna, starts_at=soon)
    cancelled = f.VisitFactory(doctor=alpha.doctor, patient=anna, starts_at=soon + timedelta(hours=-3), status="cancelled")
    Visit.objects.update(created_at=timezone.now() - timedelta(days=3))  # booked before the 24-hour mark

    for _tick in range(2):  # two beat ticks: the second adds nothing
        queue_visit_reminders.delay()
        assert _wait_for(lambda: Notification.objects.filter(visit=kept).exists())
        dispatch_due_notifications.delay()
        assert _wait_for(lambda: Delivery.objects.filter(notification__visit=kept, status="sent").count() == 1)
        assert _wait_for(worker.settled)

    assert list(Notification.objects.filter(visit=kept).values_list("kind", flat=True)) == ["confirm"]
    assert not Notification.objects.filter(visit=cancelled).exists()
    assert len(_texts(smsru)) == 1 and "/v/" in _texts(smsru)[0]
