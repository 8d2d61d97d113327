"""The one WebSocket a signed-in user keeps open (/ws/).

A staff member or a patient connects with their session cookie (the handshake
also checks Origin, see clinic_crm.asgi); anyone else is refused with 4401.
The socket joins the groups its user may hear (messaging.realtime): no
per-thread subscription can reach a thread the tenancy layer hides.

Frames are JSON objects with a `type`. A frame that cannot be served gets an
`error` event with a reason (and the frame's `ref` / `client_msg_id`), and the
socket stays open for the next good frame. After a network drop the client
sends `resume` with the last seq it has per thread and receives exactly what it
missed; live events may overlap the catch-up, so clients keep messages by
(thread, seq).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation.trans_real import parse_accept_lang_header

from core import client_input
from core.errors import one_line
from messaging import realtime, selectors, services
from messaging.models import Thread
from messaging.payloads import PATIENT, STAFF, message_payload, socket_message_event
from messaging.socket_groups import socket_groups, socket_user_kind
from patients.services import ConsentRequired

logger = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024


def _reason(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ValidationError):
        return "invalid", one_line(exc)
    if isinstance(exc, ConsentRequired):
        return "consent_required", str(exc)
    if isinstance(exc, services.SendingTooFast):
        return "too_fast", str(exc)
    if isinstance(exc, PermissionDenied):
        return "forbidden", str(exc) or gettext("You are not allowed to do this.")
    if isinstance(exc, ObjectDoesNotExist):
        return "not_found", gettext("No such thread.")
    raise exc


def _language(scope: dict) -> str:
    """The language the page chose (cookie), else the browser's, as LocaleMiddleware decides for HTTP."""
    chosen = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
    candidates = [chosen] if chosen else []
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    candidates += [code for code, _q in parse_accept_lang_header(accept)]
    for code in candidates:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


# What each frame's fields must be, checked before a handler runs: a list where a thread id belongs,
# or an id beyond PostgreSQL's bigint, is the client's mistake (an error frame), not a crash (close 1011).
BIGINT = 2**63 - 1
FRAME_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "message.send": {"thread": ("id", True), "text": ("text", False), "client_msg_id": ("text", False), "attachments": ("ids", False),
                     "note": ("flag", False)},
    "read": {"thread": ("id", True), "seq": ("seq_or_null", False)},
    "delivered": {"thread": ("id", True), "seq": ("seq", True)},
    "typing": {"thread": ("id", True), "state": ("flag", False)},
    "viewing": {"thread": ("id", True), "state": ("flag", False)},
    "resume": {"cursors": ("cursors", False)},
}  # fmt: skip


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= BIGINT


def _fits(kind: str, value: Any) -> bool:
    if kind == "id":
        return _is_int(value, 1)
    if kind == "seq":
        return _is_int(value, 0)
    if kind == "seq_or_null":
        return value is None or _is_int(value, 0)
    if kind == "text":
        return isinstance(value, str)
    if kind == "flag":
        return isinstance(value, bool)
    if kind == "ids":
        return isinstance(value, list) and all(_is_int(item, 1) for item in value)
    # resume: {"<thread id>": <last seq held>}
    return isinstance(value, dict) and all(k.isascii() and k.isdigit() and _is_int(int(k), 1) and _is_int(v, 0) for k, v in value.items())


EXPECTED = {
    "id": "a positive integer id",
    "seq": "a non-negative integer",
    "seq_or_null": "a non-negative integer or null",
    "text": "a string",
    "flag": "true or false",
    "ids": "a list of positive integer ids",
    "cursors": "an object mapping thread ids to the last seq held",
}


def _check_fields(content: dict) -> None:
    for name, (kind, required) in FRAME_FIELDS.get(content["type"], {}).items():
        if name not in content:
            if required:
                raise ValueError(f"'{name}' is required")
            continue
        if not _fits(kind, content[name]):
            raise ValueError(f"'{name}' must be {EXPECTED[kind]}")


# Messages rendered for sockets of this process, newest last: a message shown to many sockets of one side
# and language (a clinic's operators, a family's devices) is rendered once.
_RENDERED: OrderedDict[tuple[int, str, str], str | None] = OrderedDict()
_RENDERED_KEEP = 256


async def _rendered(message_id: int, *, audience: str, language: str) -> str | None:
    key = (message_id, audience, language)
    if key not in _RENDERED:
        payload = await database_sync_to_async(socket_message_event)(message_id, audience=audience, language=language)
        _RENDERED[key] = json.dumps(payload) if payload is not None else None
        while len(_RENDERED) > _RENDERED_KEEP:
            _RENDERED.popitem(last=False)
    return _RENDERED[key]


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.kind = await socket_user_kind(user)
        if self.kind is None:
            await self.close(code=4401)
            return
        self.user = user
        self.language = _language(self.scope)
        self.groups_joined = [realtime.user_group(user.pk), *await socket_groups(user)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await database_sync_to_async(services.socket_opened)(user_id=user.pk, channel_name=self.channel_name)
        self.last_seen = time.monotonic()
        self.viewing: set[int] = set()
        await self.send_json({"type": "hello", "as": self.kind, "heartbeat": selectors.heartbeat_seconds()})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "user", None) is not None:
            for thread_id in list(self.viewing):
                await self._view(thread_id, viewing=False)
            await database_sync_to_async(services.socket_closed)(channel_name=self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        with translation.override(self.language):  # reasons in the person's language
            await self._receive(text_data)

    async def _receive(self, text_data: str | None) -> None:
        # Decode here rather than in the base class so that bad JSON is answered, not fatal.
        if text_data is None or len(text_data) > MAX_FRAME:
            await self.send_json({"type": "error", "code": "bad_frame", "reason": gettext("Send JSON text frames of at most 64 KB.")})
            return
        try:
            content = client_input.json_decode(text_data, max_bytes=MAX_FRAME)
        except client_input.ClientInputError as exc:
            reason = gettext("Frame is not valid JSON.") if exc.code == "bad_json" else exc.message
            await self.send_json({"type": "error", "code": "bad_frame", "reason": reason})
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_json({"type": "error", "code": "bad_frame", "reason": gettext("Frame must be a JSON object with a 'type'.")})
            return
        handler = self.HANDLERS.get(content["type"])
        if handler is None:
            await self.send_json(
                {
                    "type": "error",
                    "code": "unknown_type",
                    "reason": gettext("Unknown frame type '%(type)s'.") % {"type": content["type"][:40]},
                }
            )
            return
        ref = content.get("ref") or content.get("client_msg_id")
        try:
            _check_fields(content)
            await handler(self, content)
        except (ValidationError, PermissionDenied, ObjectDoesNotExist, ConsentRequired, services.SendingTooFast) as exc:
            code, reason = _reason(exc)
            await self.send_json({"type": "error", "code": code, "reason": reason, "ref": ref, "frame": content["type"]})
        except (TypeError, ValueError, KeyError) as exc:
            await self.send_json(
                {
                    "type": "error",
                    "code": "bad_frame",
                    "reason": gettext("Malformed '%(type)s' frame: %(error)s.") % {"type": content["type"][:40], "error": exc},
                    "ref": ref,
                }
            )
        await self._heartbeat()

    # --- frames ------------------------------------------------------------------------

    async def on_ping(self, content: dict) -> None:
        await self.send_json({"type": "pong"})

    async def on_resume(self, content: dict) -> None:
        raw = content.get("cursors") or {}
        if not isinstance(raw, dict):
            raise ValueError("cursors must map thread ids to the last seq held")
        cursors = {int(k): int(v) for k, v in raw.items()}
        events, reload = await database_sync_to_async(self._catch_up)(cursors)
        for event in events:
            await self.send_json(event)
        await self.send_json({"type": "resumed", "reload": reload, "count": len(events)})

    def _catch_up(self, cursors: dict[int, int]) -> tuple[list[dict], list[int]]:
        messages, reload = selectors.missed_messages(user=self.user, cursors=cursors)
        threads = {
            t.pk: t
            for t in Thread.objects.filter(pk__in={m.thread_id for m in messages}).select_related(
                "clinic", "doctor", "patient", "patient__guardian"
            )
        }
        audience = STAFF if self.kind == STAFF else PATIENT
        # Rendered for this socket alone, in its language; no inbox rows (the inbox re-fetches its list after a gap).
        events = [
            message_payload(m, audience=audience, thread=threads[m.thread_id], languages=[self.language], with_row=False) for m in messages
        ]
        return events, reload

    async def on_message_send(self, content: dict) -> None:
        text, client_msg_id = content.get("text", ""), str(content.get("client_msg_id", ""))
        if not isinstance(text, str):
            raise ValidationError({"text": "Text must be a string."})
        attachments = [int(pk) for pk in content.get("attachments") or []]
        kind = "note" if content.get("note") and self.kind == STAFF else "text"

        def send() -> dict:
            thread = selectors.thread_for(user=self.user, thread_id=int(content["thread"]))
            message, created = services.send_message(
                thread=thread, actor=self.user, text=text, kind=kind, client_msg_id=client_msg_id, attachment_ids=attachments
            )
            return {
                "type": "message.ack",
                "thread": thread.pk,
                "seq": message.seq,
                "client_msg_id": client_msg_id,
                "duplicate": not created,
            }

        await self.send_json(await database_sync_to_async(send)())

    async def on_read(self, content: dict) -> None:
        seq = content.get("seq")

        def mark() -> None:
            thread = selectors.thread_for(user=self.user, thread_id=int(content["thread"]))
            services.thread_mark_read(thread=thread, actor=self.user, seq=None if seq is None else int(seq))

        await database_sync_to_async(mark)()

    async def on_delivered(self, content: dict) -> None:
        def mark() -> None:
            thread = selectors.thread_for(user=self.user, thread_id=int(content["thread"]))
            services.thread_mark_delivered(thread=thread, actor=self.user, seq=int(content["seq"]))

        await database_sync_to_async(mark)()

    async def on_typing(self, content: dict) -> None:
        """Typing reaches the other side; for staff it is also the soft lock ("Olga is replying")."""
        thread_id, typing = int(content["thread"]), bool(content.get("state", True))
        thread, groups = await database_sync_to_async(self._thread_and_other_side)(thread_id)
        await realtime.asend_events([(groups, {"type": "typing", "thread": thread_id, "side": self.kind, "state": typing})])
        if self.kind == STAFF:
            await self._view(thread_id, viewing=True, replying=typing, thread=thread)

    def _thread_and_other_side(self, thread_id: int) -> tuple[Thread, list[str]]:
        """The thread (tenancy-checked) and the groups of the side this socket's user is not on."""
        thread = selectors.thread_for(user=self.user, thread_id=thread_id)
        return thread, realtime.patient_groups(thread) if self.kind == STAFF else realtime.staff_groups(thread)

    async def on_viewing(self, content: dict) -> None:
        """Staff only: the thread is open on my screen (refresh every ~20 s), or closed."""
        if self.kind != STAFF:
            raise PermissionDenied(gettext("Only staff share what they are viewing."))
        thread_id = int(content["thread"])
        thread = await database_sync_to_async(selectors.thread_for)(user=self.user, thread_id=thread_id)
        await self._view(thread_id, viewing=bool(content.get("state", True)), thread=thread)

    async def _view(self, thread_id: int, *, viewing: bool, replying: bool | None = None, thread: Thread | None = None) -> None:
        """Mark (or unmark) the thread as on this staff member's screen and tell its staff who is looking."""
        (self.viewing.add if viewing else self.viewing.discard)(thread_id)
        viewers = await services.thread_view_mark(
            thread_id=thread_id, user_id=self.user.pk, name=self.user.display_name, viewing=viewing, replying=replying
        )
        if thread is None:  # leaving: the thread may have been checked long ago
            thread = await database_sync_to_async(Thread.objects.get)(pk=thread_id)
        await realtime.asend_events([(realtime.staff_groups(thread), {"type": "presence", "thread": thread_id, **viewers})])

    async def _heartbeat(self) -> None:
        if time.monotonic() - self.last_seen > selectors.heartbeat_seconds() * 0.8:
            self.last_seen = time.monotonic()
            await database_sync_to_async(services.socket_seen)(channel_name=self.channel_name)

    HANDLERS = {
        "ping": on_ping,
        "resume": on_resume,
        "message.send": on_message_send,
        "read": on_read,
        "delivered": on_delivered,
        "typing": on_typing,
        "viewing": on_viewing,
    }

    # --- events from services ------------------------------------------------------------

    async def user_event(self, event: dict[str, Any]) -> None:
        """Relay an event a service sent to one of this socket's groups: JSON already (realtime.send_events),
        or a new message to render for this socket's side and language (once per process: `_rendered`)."""
        text = event.get("text")
        if text is None:
            text = await _rendered(event["render"]["message"], audience=event["render"]["audience"], language=self.language)
        if text is not None:
            await self.send(text_data=text)
