"""Conversation jobs that celery beat fires: snoozes ending, dead sockets and unsent files cleaned up."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging import tasks
from messaging.models import Attachment, Message, SocketConnection, Thread
from messaging.selectors import user_is_online
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_snoozed_thread_reopens_when_its_time_comes(alpha):
    due = f.ThreadFactory(clinic=alpha.clinic, status=Thread.Status.SNOOZED, snoozed_until=timezone.now() - timedelta(minutes=1))
    later = f.ThreadFactory(clinic=alpha.clinic, status=Thread.Status.SNOOZED, snoozed_until=timezone.now() + timedelta(hours=2))
    assert tasks.wake_snoozed_threads.delay().get() == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.snoozed_until) == (Thread.Status.OPEN, None)
    assert later.status == Thread.Status.SNOOZED
    event = Message.objects.get(thread=due)
    assert event.kind == "event" and event.author == "system" and "open again" in event.text


def test_sockets_of_a_crashed_server_stop_counting_as_online(alpha):
    SocketConnection.objects.create(user=alpha.operator, channel_name="dead", seen_at=timezone.now() - timedelta(minutes=10))
    SocketConnection.objects.create(user=alpha.manager, channel_name="alive")
    assert not user_is_online(alpha.operator.pk) and user_is_online(alpha.manager.pk)
    assert tasks.purge_stale_sockets.delay().get() == 1
    assert list(SocketConnection.objects.values_list("channel_name", flat=True)) == ["alive"]


def test_files_uploaded_but_never_sent_are_removed_after_a_day(alpha):
    from django.core.files.base import ContentFile

    thread = f.ThreadFactory(clinic=alpha.clinic)
    old = Attachment(thread=thread, uploaded_by=alpha.operator, content_type="application/pdf", size=4, original_name="a.pdf")
    old.file.save("a.pdf", ContentFile(b"%PDF"), save=False)
    old.created_at = timezone.now() - timedelta(days=2)
    old.save()
    fresh = Attachment(thread=thread, uploaded_by=alpha.operator, content_type="application/pdf", size=4, original_name="b.pdf")
    fresh.file.save("b.pdf", ContentFile(b"%PDF"), save=False)
    fresh.save()
    path = old.file.path
    assert tasks.purge_unsent_attachments.delay().get() == 1
    assert list(Attachment.objects.all()) == [fresh]
    assert not os.path.exists(path)
