"""What the rest of the product hears after a conversation changes: socket events and the inbox version.

Everything here runs after commit (messaging.realtime.send_on_commit): a client never hears
of a change that rolled back, and the broadcast never holds a row lock.
"""

from __future__ import annotations

from django.db import transaction

from messaging import realtime
from messaging.models import Attachment, Message, Thread
from messaging.payloads import PATIENT, STAFF, message_payload, thread_payload
from messaging.selectors import inbox_version_key
from messaging.services.throttle import cache_increment


def inbox_changed(clinic_id: int) -> None:
    """Invalidate the cached inbox counts of the clinic (selectors._cached_counts), after commit."""
    transaction.on_commit(lambda: cache_increment(inbox_version_key(clinic_id), timeout=None))


def message_events(message: Message, *, thread: Thread | None = None, attachments: list[Attachment] | None = None) -> list[realtime.Event]:
    """A committed message for its staff groups and, if public, its patient groups.

    send_message passes the rows it already holds (no re-reading).
    """
    if thread is None:
        thread = Thread.objects.select_related("patient", "patient__guardian", "doctor", "clinic").get(pk=message.thread_id)
    if attachments is None:
        attachments = list(message.attachments.all())
    events = [(realtime.staff_groups(thread), message_payload(message, audience=STAFF, thread=thread, attachments=attachments))]
    if message.is_public:
        events.append((realtime.patient_groups(thread), message_payload(message, audience=PATIENT, thread=thread, attachments=attachments)))
    return events


def announce_message(message: Message, *, thread: Thread | None = None, attachments: list[Attachment] | None = None) -> None:
    """Broadcast the message after commit; its payloads are built then, outside the transaction."""
    realtime.send_on_commit(lambda: message_events(message, thread=thread, attachments=attachments))


def announce_thread_change(thread: Thread) -> None:
    """The thread's new state (status, assignee, tags...) to its staff, after commit."""
    realtime.send_on_commit(lambda: [(realtime.staff_groups(thread), thread_payload(thread, audience=STAFF))])
