"""Writes for conversations, one module per concern; the public names are re-exported here.

* sending: `send_message`, the only way a message comes to exist;
* store: the two stores that write it (ORM for SQLite, one statement for PostgreSQL);
* counters: the thread's counter rules both stores render; notices: the offline notice and mentions;
* throttle: SEND_LIMIT_PER_MINUTE and the Redis counter (patch the limit there, not here);
* threads: opening a thread and the staff's actions; reading: read and delivery markers;
* attachments: uploads; presence: open sockets and the soft lock; broadcast: what is sent after commit.
"""

from messaging.services.attachments import attachment_upload, attachments_purge_unsent
from messaging.services.presence import socket_closed, socket_opened, socket_seen, sockets_purge_stale, thread_view_mark
from messaging.services.reading import thread_mark_delivered, thread_mark_read
from messaging.services.sending import send_message
from messaging.services.threads import (
    thread_access_record,
    thread_assign,
    thread_open,
    thread_set_status,
    thread_update,
    threads_wake_snoozed,
)
from messaging.services.throttle import SendingTooFast

__all__ = [
    "SendingTooFast",
    "attachment_upload",
    "attachments_purge_unsent",
    "send_message",
    "socket_closed",
    "socket_opened",
    "socket_seen",
    "sockets_purge_stale",
    "thread_access_record",
    "thread_assign",
    "thread_mark_delivered",
    "thread_mark_read",
    "thread_open",
    "thread_set_status",
    "thread_update",
    "thread_view_mark",
    "threads_wake_snoozed",
]
