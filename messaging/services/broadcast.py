"""What the rest of the product hears after a conversation changes: socket events and the inbox version.

Everything here runs after commit (messaging.realtime.send_on_commit): a client never hears
of a change that rolled back, and the broadcast never holds a row lock.
"""

from __future__ import annotations

from django.db import transaction

from messaging import realtime
from messaging.models import Message, Thread
from messaging.payloads import PATIENT, STAFF, message_event_stub, thread_payload
from messaging.selectors import inbox_version_key
from messaging.services.throttle import cache_increment


def inbox_changed(clinic_id: int) -> None:
    """Invalidate the cached inbox counts of the clinic (selectors._cached_counts), after commit."""
    transaction.on_commit(lambda: cache_increment(inbox_version_key(clinic_id), timeout=None))


def message_events(message: Message, *, thread: Thread | None = None) -> list[realtime.Event]:
    """A committed message for its staff groups and, if public, its patient groups.

    The events name the message and the side; each socket server renders it for its sockets
    (messaging.payloads.socket_message_event), so the sender's process renders nothing.
    send_message passes the thread it already holds (no re-reading).
    """
    if thread is None:
        thread = Thread.objects.select_related("patient", "patient__guardian", "doctor", "clinic").get(pk=message.thread_id)
    events = [(realtime.staff_groups(thread), message_event_stub(message, audience=STAFF))]
    if message.is_public:
        events.append((realtime.patient_groups(thread), message_event_stub(message, audience=PATIENT)))
    return events


def announce_message(message: Message, *, thread: Thread | None = None) -> None:
    """Broadcast the message after commit, outside the transaction."""
    realtime.send_on_commit(lambda: message_events(message, thread=thread))


def announce_thread_change(thread: Thread) -> None:
    """The thread's new state (status, assignee, tags...) to its staff, after commit."""
    realtime.send_on_commit(lambda: [(realtime.staff_groups(thread), thread_payload(thread, audience=STAFF))])
