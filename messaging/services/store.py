"""Writing one validated message: two stores, one set of rules.

Why two: send_message is the hottest write of the product (every socket frame, every portal
post). Through the ORM it takes a query each for the resend lookup, the consent check, the
row lock, the insert, the counters, the online check and the outbox, each compiled by Django.
On PostgreSQL one statement (data-modifying WITH) does all of it in one round trip.
SQLite, the embedded default, has no such statement and keeps the ORM store.

Both apply the same declared rules: the thread's counters and the Message columns
(messaging.services.counters), consent (patients.selectors.consent_is_given and its SQL form),
the offline notice (messaging.services.notices). The test suite runs on both databases.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.models import STAFF_ONLY_KINDS, Attachment, Message, Thread
from messaging.selectors import alive_since
from messaging.services.attachments import attachments_bind
from messaging.services.broadcast import inbox_changed
from messaging.services.counters import MESSAGE_FIELDS, column, orm_changes, sql_set_list
from messaging.services.notices import MENTION, note_offline_recipients, notify_mentions, offline_notice_sql
from messaging.services.throttle import SendingTooFast, SendWindow, throttle
from messaging.text import preview
from notifications.models import Notification
from patients.selectors import consent_given_sql, consent_is_given
from patients.services import ConsentRequired, consent_require

THREAD_FIELDS = Thread._meta.concrete_fields
THREAD_COLUMNS = [str(f.column) for f in THREAD_FIELDS]


@dataclass(frozen=True)
class OutgoingMessage:
    """A validated message on its way to the database; the rules every store applies follow from it."""

    thread: Thread
    sender: Any
    author: str
    kind: str
    text: str
    client_msg_id: str
    attachment_ids: list[int]
    data: dict[str, Any]

    @property
    def is_public(self) -> bool:
        return self.kind not in STAFF_ONLY_KINDS

    @property
    def by_a_person(self) -> bool:
        return self.author in (Message.Author.PATIENT, Message.Author.STAFF)

    @property
    def needs_consent(self) -> bool:
        """Withdrawn consent stops processing both ways; private notes are the clinic's own records."""
        return self.by_a_person and self.kind != Message.Kind.NOTE

    @property
    def preview(self) -> str:
        return preview(self.text or _("Attachment"))

    def row(self, *, thread: Thread, seq: int, now: datetime) -> dict[str, Any]:
        """The Message fields both stores write (counters.MESSAGE_FIELDS)."""
        values = {
            "thread": thread,
            "seq": seq,
            "author": self.author,
            "sender": self.sender,
            "kind": self.kind,
            "text": self.text,
            "data": self.data,
            "client_msg_id": self.client_msg_id,
            "created_at": now,
        }
        return {name: values[name] for name in MESSAGE_FIELDS}


@dataclass(frozen=True)
class Stored:
    message: Message
    created: bool  # False: a resend, `message` is the copy stored before
    attachments: list[Attachment]  # bound to the new message: announced without reading them again


def store_orm(outgoing: OutgoingMessage) -> Stored:
    """The portable store (SQLite, the embedded default): the ORM, step by step, in the caller's transaction."""
    thread = outgoing.thread
    stored = _stored_copy(outgoing)
    if stored is not None:
        return Stored(stored, created=False, attachments=[])
    if outgoing.needs_consent:
        consent_require(patient=thread.patient, clinic=thread.clinic)
    if outgoing.by_a_person:
        throttle(outgoing.sender)

    locked = (
        Thread.objects.select_for_update(of=("self",)).select_related("patient", "patient__guardian", "doctor", "clinic").get(pk=thread.pk)
    )
    now = timezone.now()
    seq = locked.last_seq + 1
    message = Message.objects.create(**outgoing.row(thread=locked, seq=seq, now=now))
    changes = orm_changes(outgoing.author, outgoing.is_public, seq=seq, now=now, preview=outgoing.preview)
    Thread.objects.filter(pk=locked.pk).update(**changes)
    locked.refresh_from_db(fields=list(changes))  # the row as written, as the PostgreSQL store returns it
    note_offline_recipients(message=message, thread=locked)
    return Stored(message, created=True, attachments=_after_insert(message, outgoing))


def store_postgresql(outgoing: OutgoingMessage) -> Stored:
    """The PostgreSQL store: one statement, in one round trip where it can be.

    A single statement is atomic on its own, so a plain message outside a transaction
    sends no BEGIN and COMMIT (two round trips of the four a send needs). Files and
    mentions take more statements, and a caller's transaction needs a savepoint to survive
    a racing resend: then it runs in `transaction.atomic()`. The throttle is counted first
    (it must refuse before anything is written) and given back for resends and refusals
    for consent, which the ORM store checks before counting.
    """
    thread = outgoing.thread
    window = SendWindow.count(outgoing.sender) if outgoing.by_a_person else None
    if window is not None and window.over:
        stored = _stored_copy(outgoing)  # a resend is answered even at the limit; consent refusal comes first too
        if stored is not None or (outgoing.needs_consent and not consent_is_given(patient=thread.patient, clinic=thread.clinic)):
            window.uncount()
            if stored is not None:
                return Stored(stored, created=False, attachments=[])
            raise ConsentRequired(thread.clinic)
        raise SendingTooFast(retry_after=window.retry_after)
    more_statements = bool(outgoing.attachment_ids) or (outgoing.kind == Message.Kind.NOTE and MENTION.search(outgoing.text))
    try:
        with transaction.atomic() if more_statements or connection.in_atomic_block else nullcontext():
            result = _run_statement(outgoing, now=timezone.now(), alive_since=alive_since())
            if result.message_id is not None:
                message = _message_from_statement(outgoing, result)
                attachments = _after_insert(message, outgoing)
    except IntegrityError:
        if window is not None:
            window.uncount()
        raise
    if result.stored_id is not None or not result.consent_given:
        if window is not None:
            window.uncount()
        if result.stored_id is not None:
            return Stored(Message.objects.get(pk=result.stored_id), created=False, attachments=[])
        raise ConsentRequired(thread.clinic)
    if result.message_id is None:
        raise Thread.DoesNotExist("Thread matching query does not exist.")
    return Stored(message, created=True, attachments=attachments)


def _stored_copy(outgoing: OutgoingMessage) -> Message | None:
    if not outgoing.client_msg_id:
        return None
    return Message.objects.filter(thread=outgoing.thread, sender=outgoing.sender, client_msg_id=outgoing.client_msg_id).first()


def _after_insert(message: Message, outgoing: OutgoingMessage) -> list[Attachment]:
    """What every store does after the row exists: files, mentions, the inbox counts. Returns the files bound."""
    attachments: list[Attachment] = []
    if outgoing.attachment_ids:
        attachments = attachments_bind(message=message, sender=outgoing.sender, attachment_ids=outgoing.attachment_ids)
    if outgoing.kind == Message.Kind.NOTE:
        notify_mentions(message=message, thread=message.thread)
    inbox_changed(message.thread.clinic_id)
    return attachments


# --- the PostgreSQL statement ----------------------------------------------------------------


@dataclass(frozen=True)
class StatementResult:
    stored_id: int | None  # the earlier copy of a resend: nothing was written
    consent_given: bool  # False: nothing was written
    message_id: int | None  # None with the two above clear: the thread is gone
    thread: Thread | None  # the thread row as updated (counters, status), when a message was written
    now: datetime


def _run_statement(outgoing: OutgoingMessage, *, now: datetime, alive_since: datetime) -> StatementResult:
    thread = outgoing.thread
    params = {
        "thread": thread.pk,
        "patient": thread.patient_id,
        "clinic": thread.clinic_id,
        "author": outgoing.author,
        "sender": getattr(outgoing.sender, "pk", None),
        "kind": outgoing.kind,
        "text": outgoing.text,
        "data": json.dumps(outgoing.data),
        "client_msg_id": outgoing.client_msg_id,
        "preview": outgoing.preview if outgoing.is_public else "",
        "now": now,
        "alive_since": alive_since,
        "notification_kind": Notification.Kind.MESSAGE,
        "notification_status": Notification.Status.PENDING,
    }
    statement = _statement(outgoing.author, outgoing.is_public, outgoing.needs_consent, bool(outgoing.client_msg_id))
    with _prepared_cursor() as cursor:
        cursor.execute(statement, params)
        stored_id, consent_given, message_id, *thread_row = cursor.fetchone()
    updated = Thread.from_db(connection.alias, [f.attname for f in THREAD_FIELDS], thread_row) if message_id is not None else None
    return StatementResult(stored_id=stored_id, consent_given=consent_given, message_id=message_id, thread=updated, now=now)


def _prepared_cursor() -> Any:
    """Django's connection and cursor wrapper (logging, error translation), but server-side binding.

    Django binds parameters client-side, so PostgreSQL parses and plans every statement
    again, which costs more than running this one. A server-side binding cursor lets
    psycopg prepare it on the connection after a few runs (prepare_threshold).
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(psycopg.Cursor(connection.connection))  # type: ignore[attr-defined]


# How the statement fills each of counters.MESSAGE_FIELDS: from the updated thread row, else a parameter.
_MESSAGE_VALUES = {"thread": "id", "seq": "last_seq", "sender": "%(sender)s::bigint", "data": "%(data)s::jsonb", "created_at": "%(now)s"}


@cache
def _statement(author: str, public: bool, needs_consent: bool, resend_possible: bool) -> str:
    """The send as one statement, in the order the ORM store takes its steps:

    * `stored`: the message a resend (same thread, sender and client_msg_id) already made;
    * `consent`: patients.selectors.consent_given_sql, the rule of consent_is_given;
    * `thread`: only if neither stops it, the UPDATE of the thread's counters. The UPDATE takes
      the row lock, and `last_seq + 1` is read under it, so concurrent sends are numbered one
      after another exactly as SELECT … FOR UPDATE numbered them;
    * `message`: the INSERT, numbered from the updated row;
    * `recipient`, `notified`: the offline notice (messaging.services.notices).
    """
    thread, message = Thread._meta.db_table, Message._meta.db_table
    columns = ", ".join(THREAD_COLUMNS)
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
        f"thread AS (UPDATE {thread} SET {', '.join(sql_set_list(author, public))} WHERE id = %(thread)s "
        f"{'AND NOT EXISTS (SELECT 1 FROM stored) ' if resend_possible else ''}AND (SELECT given FROM consent) RETURNING {columns})"
    )
    message_columns = ", ".join(column(Message, name) for name in MESSAGE_FIELDS)
    message_values = ", ".join(_MESSAGE_VALUES.get(name, f"%({name})s") for name in MESSAGE_FIELDS)
    parts.append(f"message AS (INSERT INTO {message} ({message_columns}) SELECT {message_values} FROM thread RETURNING id)")
    parts += offline_notice_sql(author, public)
    thread_columns = ", ".join(f"thread.{name}" for name in THREAD_COLUMNS)
    return (
        f"WITH {', '.join(parts)} "
        f"SELECT {'(SELECT id FROM stored LIMIT 1)' if resend_possible else 'NULL'}, (SELECT given FROM consent), "
        f"(SELECT id FROM message), {thread_columns} FROM (SELECT 1) AS one LEFT JOIN thread ON true"
    )


def _message_from_statement(outgoing: OutgoingMessage, result: StatementResult) -> Message:
    """The Message the statement wrote, on the thread row as it updated it (relations kept from the caller's)."""
    thread, fresh = outgoing.thread, result.thread
    assert fresh is not None
    for name in ("clinic", "patient", "doctor", "contact", "assigned_to", "team"):
        field = Thread._meta.get_field(name)
        assert isinstance(field, models.ForeignKey)
        if field.is_cached(thread) and getattr(thread, field.attname) == getattr(fresh, field.attname):
            field.set_cached_value(fresh, field.get_cached_value(thread))
    message = Message(id=result.message_id, **outgoing.row(thread=fresh, seq=fresh.last_seq, now=result.now))
    message._state.adding, message._state.db = False, connection.alias
    return message
