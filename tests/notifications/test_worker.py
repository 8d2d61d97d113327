"""The pipeline through a real Celery worker: tasks travel through the broker (Redis in CI), not eagerly."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connection

from clinic_crm.celery import app as celery_app
from notifications.models import Delivery, Notification
from notifications.tasks import dispatch_due_notifications


@pytest.fixture
def worker(settings):
    """A worker in threads of this process (so respx sees its HTTP), fed by the real broker."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
            yield
    finally:
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
    time.sleep(0.5)  # a duplicate would arrive now
    assert smsru.call_count == 1
    assert [m.to for m in mail.outbox] == [["anna@example.ru"]]
    assert Notification.objects.get(pk=notification.pk).status == "dispatched"
