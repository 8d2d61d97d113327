"""`send_message` is the only way a message comes to exist.

Portal, API, the admin inbox, the socket, bots and future messenger integrations
all call it, so validation, consent, throttling, numbering, counters, the outbox
and the realtime broadcast happen the same way for each.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from messaging.models import MAX_TEXT, Message, Thread
from messaging.services.acting import side_of
from messaging.services.broadcast import announce_message
from messaging.services.store import OutgoingMessage, Stored, store_orm, store_postgresql

# A staff reply that is nothing but "/word" is a canned-answer shortcode left unexpanded, never meant for the patient.
SHORTCODE_ONLY = re.compile(r"/[\w-]+")


def send_message(
    *,
    thread: Thread,
    actor: Any,
    text: str = "",
    kind: str = Message.Kind.TEXT,
    client_msg_id: str = "",
    attachment_ids: list[int] | tuple[int, ...] = (),
    author: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[Message, bool]:
    """Validate, store and announce one message. Returns (message, created).

    A resend with the same `client_msg_id` by the same actor returns the stored
    message (created=False): a flaky network never makes a second copy.
    `author` is given only for system and bot messages (actor None); otherwise
    it follows from who the actor is in this thread.
    """
    text = (text or "").strip()
    client_msg_id = (client_msg_id or "").strip()[:64]
    author = _author(thread=thread, sender=actor, author=author, kind=kind)
    attachment_ids = list(dict.fromkeys(int(pk) for pk in attachment_ids))
    _check_text(text=text, author=author, kind=kind, attachment_ids=attachment_ids)
    if attachment_ids and not text and kind == Message.Kind.TEXT:
        kind = Message.Kind.ATTACHMENT
    outgoing = OutgoingMessage(
        thread=thread,
        sender=actor,
        author=author,
        kind=kind,
        text=text,
        client_msg_id=client_msg_id if actor is not None else "",
        attachment_ids=attachment_ids,
        data=data or {},
    )
    try:
        stored = _store(outgoing)
    except IntegrityError:
        if outgoing.client_msg_id:  # the same resend raced us: it won, return its row
            return Message.objects.get(thread=thread, sender=actor, client_msg_id=client_msg_id), False
        raise
    if stored.created:
        announce_message(stored.message, thread=stored.message.thread)
    return stored.message, stored.created


def _store(outgoing: OutgoingMessage) -> Stored:
    """PostgreSQL's one-statement store, else the ORM's (messaging.services.store says why there are two)."""
    if connection.vendor == "postgresql":
        return store_postgresql(outgoing)
    with transaction.atomic():
        return store_orm(outgoing)


def _author(*, thread: Thread, sender: Any, author: str | None, kind: str) -> str:
    """Who writes (patient, staff, system, bot), and whether that author may write this kind."""
    if author in (Message.Author.SYSTEM, Message.Author.BOT):
        if sender is not None:
            raise ValueError("system and bot messages have no sender")
    else:
        author = side_of(sender, thread)
    if kind == Message.Kind.NOTE and author != Message.Author.STAFF:
        raise PermissionDenied(_("Only staff can write private notes."))
    if kind == Message.Kind.EVENT and author not in (Message.Author.SYSTEM, Message.Author.STAFF):
        raise PermissionDenied(_("Only the system records events."))
    return author


def _check_text(*, text: str, author: str, kind: str, attachment_ids: list[int]) -> None:
    if len(text) > MAX_TEXT:
        raise ValidationError(
            {"text": _("The message is too long: %(length)s characters, at most %(limit)s.") % {"length": len(text), "limit": MAX_TEXT}},
            code="too_long",
        )
    if author == Message.Author.STAFF and kind == Message.Kind.TEXT and not attachment_ids and SHORTCODE_ONLY.fullmatch(text):
        raise ValidationError(
            {"text": _("%(text)s is a canned-answer shortcode, not a reply: choose an answer from the list. Nothing was sent.")
             % {"text": text}},
            code="shortcode",
        )  # fmt: skip
    if not text and not attachment_ids:
        raise ValidationError({"text": _("Write a message or attach a file.")}, code="empty")
