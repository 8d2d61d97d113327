"""send_message on PostgreSQL in one statement (services._store_postgresql says why).

One round trip, in the caller's transaction, does what services._store does step by step:

* `stored`: the message a resend (same thread, sender and client_msg_id) already made;
* `consent`: patients.selectors.consent_given_sql, the rule of consent_is_given;
* `thread`: only if neither stops it, the UPDATE of the thread's counters. The UPDATE takes
  the row lock, and `last_seq + 1` is read under it, so concurrent sends are numbered one
  after another exactly as SELECT … FOR UPDATE numbered them;
* `message`: the INSERT, numbered from the updated row;
* `notified`: the outbox row for a recipient without a live socket (the rule of
  services._note_offline_recipients).

PostgreSQL only (data-modifying WITH); other databases use services._store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

import psycopg
from django.db import connection

from clinics.models import Clinic, Doctor
from messaging.models import Message, SocketConnection, Thread
from notifications.models import Notification
from patients.models import Patient
from patients.selectors import consent_given_sql

if TYPE_CHECKING:
    from messaging.services import _NewMessage

REOPENED_BY_PATIENT = (Thread.Status.RESOLVED, Thread.Status.SNOOZED)
THREAD_FIELDS = Thread._meta.concrete_fields


@dataclass(frozen=True)
class Sent:
    stored_id: int | None  # the earlier copy of a resend: nothing was written
    consent_given: bool  # False: nothing was written
    message_id: int | None  # None with the two above clear: the thread is gone
    thread: Thread | None  # the thread row as updated (counters, status), when a message was written
    now: datetime


def send(new: _NewMessage, *, now: datetime, alive_since: datetime) -> Sent:
    thread = new.thread
    params = {
        "thread": thread.pk,
        "patient": thread.patient_id,
        "clinic": thread.clinic_id,
        "author": new.author,
        "sender": getattr(new.sender, "pk", None),
        "kind": new.kind,
        "text": new.text,
        "data": json.dumps(new.data),
        "client_msg_id": new.client_msg_id,
        "preview": new.preview if new.is_public else "",
        "now": now,
        "alive_since": alive_since,
        "notification_kind": Notification.Kind.MESSAGE,
        "notification_status": Notification.Status.PENDING,
    }
    statement = _statement(new.author, new.is_public, new.needs_consent, bool(new.client_msg_id))
    with _prepared_cursor() as cursor:
        cursor.execute(statement, params)
        stored_id, consent_given, message_id, *thread_row = cursor.fetchone()
    updated = Thread.from_db(connection.alias, [f.attname for f in THREAD_FIELDS], thread_row) if message_id is not None else None
    return Sent(stored_id=stored_id, consent_given=consent_given, message_id=message_id, thread=updated, now=now)


def _prepared_cursor():
    """Django's connection and cursor wrapper (logging, error translation), but server-side binding.

    Django binds parameters client-side, so PostgreSQL parses and plans every statement
    again, which for this one takes longer than running it. A server-side binding
    cursor lets psycopg prepare it on the connection after a few runs (prepare_threshold).
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(psycopg.Cursor(connection.connection))


@cache
def _statement(author: str, public: bool, needs_consent: bool, resend_possible: bool) -> str:
    thread, message = Thread._meta.db_table, Message._meta.db_table
    columns = ", ".join(f.column for f in THREAD_FIELDS)
    reopened = ", ".join(f"'{status.value}'" for status in REOPENED_BY_PATIENT)

    changes = ["last_seq = last_seq + 1", "last_activity_at = %(now)s"]
    if public:
        changes += ["last_public_seq = last_seq + 1", "last_message_preview = CASE WHEN sensitive THEN '' ELSE %(preview)s END"]
    if author == Message.Author.PATIENT:
        changes += [
            "staff_unread = staff_unread + 1",
            "patient_read_seq = last_seq + 1",
            "patient_delivered_seq = last_seq + 1",
            "patient_unread = 0",
            "waiting_since = COALESCE(waiting_since, %(now)s)",
            # the patient is back: the thread needs an answer
            f"status = CASE WHEN status IN ({reopened}) THEN '{Thread.Status.OPEN.value}' ELSE status END",
            f"snoozed_until = CASE WHEN status IN ({reopened}) THEN NULL ELSE snoozed_until END",
        ]
    elif author == Message.Author.STAFF:
        changes += ["staff_read_seq = last_seq + 1", "staff_delivered_seq = last_seq + 1", "staff_unread = 0", "staff_read_at = %(now)s"]
        if public:
            changes += [
                "patient_unread = patient_unread + 1",
                "waiting_since = NULL",
                "first_response_at = COALESCE(first_response_at, %(now)s)",
            ]
    elif public:  # system and bot messages the patient should read
        changes += ["patient_unread = patient_unread + 1"]

    parts = []
    if resend_possible:
        parts.append(
            # `client_msg_id <> ''` spelled out: the prepared (generic) plan cannot prove the partial unique index's
            # condition from a parameter, and without it scanned every message of the thread, slower as threads grew.
            f"stored AS (SELECT id FROM {message} WHERE thread_id = %(thread)s AND sender_id = %(sender)s "
            "AND client_msg_id = %(client_msg_id)s AND client_msg_id <> '')"
        )
    parts.append(f"consent AS (SELECT {consent_given_sql() if needs_consent else 'true'} AS given)")
    parts.append(
        f"thread AS (UPDATE {thread} SET {', '.join(changes)} WHERE id = %(thread)s "
        f"{'AND NOT EXISTS (SELECT 1 FROM stored) ' if resend_possible else ''}AND (SELECT given FROM consent) RETURNING {columns})"
    )
    parts.append(
        f"message AS (INSERT INTO {message} (thread_id, seq, author, sender_id, kind, text, data, client_msg_id, created_at) "
        "SELECT id, last_seq, %(author)s, %(sender)s::bigint, %(kind)s, %(text)s, %(data)s::jsonb, %(client_msg_id)s, %(now)s FROM thread "
        "RETURNING id)"
    )
    recipient = _recipient(author, public)
    if recipient:
        parts.append(f"recipient AS ({recipient})")
        parts.append(
            # The offline rule (notifications.services): sent only if still unread after the clinic's minutes,
            # and a burst of messages waits in the one notice already pending for this person and thread.
            f"notified AS (INSERT INTO {Notification._meta.db_table} "
            "(clinic_id, recipient_id, kind, thread_id, message_id, reason, status, created_at, not_before) "
            "SELECT thread.clinic_id, recipient.user_id, %(notification_kind)s::varchar, thread.id, message.id, 'offline', "
            "%(notification_status)s::varchar, %(now)s, %(now)s + make_interval(mins => "
            f"(SELECT offline_notice_minutes FROM {Clinic._meta.db_table} WHERE id = thread.clinic_id)) FROM thread, message, recipient "
            f"WHERE recipient.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {SocketConnection._meta.db_table} s "
            "WHERE s.user_id = recipient.user_id AND s.seen_at >= %(alive_since)s) "
            f"AND NOT EXISTS (SELECT 1 FROM {Notification._meta.db_table} n WHERE n.recipient_id = recipient.user_id "
            "AND n.thread_id = thread.id AND n.kind = %(notification_kind)s::varchar AND n.status = %(notification_status)s::varchar) RETURNING id)"
        )
    thread_columns = ", ".join(f"thread.{f.column}" for f in THREAD_FIELDS)
    return (
        f"WITH {', '.join(parts)} "
        f"SELECT {'(SELECT id FROM stored LIMIT 1)' if resend_possible else 'NULL'}, (SELECT given FROM consent), "
        f"(SELECT id FROM message), {thread_columns} FROM (SELECT 1) AS one LEFT JOIN thread ON true"
    )


def _recipient(author: str, public: bool) -> str:
    """Who is told offline: the family's account for replies the patient can see, the assignee
    (else the thread's doctor) for a patient's message."""
    patient = Patient._meta.db_table
    if public and author in (Message.Author.STAFF, Message.Author.SYSTEM, Message.Author.BOT):
        return (
            "SELECT CASE WHEN p.guardian_id IS NULL THEN p.user_id ELSE g.user_id END AS user_id "
            f"FROM {patient} p LEFT JOIN {patient} g ON g.id = p.guardian_id WHERE p.id = %(patient)s"
        )
    if author == Message.Author.PATIENT:
        return (
            f"SELECT COALESCE(thread.assigned_to_id, (SELECT d.user_id FROM {Doctor._meta.db_table} d WHERE d.id = thread.doctor_id)) "
            "AS user_id FROM thread"
        )
    return ""
