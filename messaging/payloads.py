"""What a client receives about threads and messages, the same over the API and the socket.

Two audiences: staff (everything of their clinic) and the patient (no staff-only
fields: assignment, tags, priority, sensitive flag, private notes, events).
The DRF serializers below declare the shapes for OpenAPI and render through the
same functions, so the socket and the API cannot drift apart. The socket's
`message.new` adds the message rendered for its audience (messaging.fragments).
"""

from __future__ import annotations

from typing import Any

from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from messaging import fragments
from messaging.models import Attachment, Message, Thread
from messaging.selectors import inbox_row_of
from messaging.text import message_html

STAFF, PATIENT = "staff", "patient"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _person(user: Any) -> str:
    return user.display_name if user else ""


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "name": attachment.original_name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": reverse("messaging:attachment", args=[attachment.pk]),
        "thumbnail_url": reverse("messaging:attachment-thumbnail", args=[attachment.pk]) if attachment.thumbnail else None,
    }


def event_text(data: dict[str, Any]) -> str:
    """A staff event line in the reader's language, from the facts stored with it."""
    event = data.get("event")
    if event == "assigned":
        if data.get("assignee"):
            return _("%(actor)s assigned the thread to %(assignee)s") % {
                "actor": data.get("actor", ""),
                "assignee": data.get("assignee_name", ""),
            }
        return _("%(actor)s returned the thread to the common queue") % {"actor": data.get("actor", "")}
    if event == "woke":
        return _("The snooze time is over: the thread is open again")
    if event == "status":
        label = Thread.Status(data["new"]).label if data.get("new") in Thread.Status.values else data.get("new", "")
        return _("%(actor)s changed the status to «%(status)s»") % {"actor": data.get("actor", ""), "status": label}
    return ""


def message_item(
    message: Message, *, audience: str, thread: Thread | None = None, attachments: list[Attachment] | None = None
) -> dict[str, Any]:
    """A message as an API item, and the facts of the `message.new` event (`message_payload` adds the rendering)."""
    thread = thread or message.thread
    text = (event_text(message.data) or message.text) if message.kind == Message.Kind.EVENT else message.text
    body = {
        "type": "message.new",
        "thread": message.thread_id,
        "seq": message.seq,
        "author": message.author,
        "author_name": _author_name(message, audience=audience, thread=thread),
        "kind": message.kind,
        "text": text,
        "html": message_html(text),
        "attachments": [attachment_payload(a) for a in (message.attachments.all() if attachments is None else attachments)],
        "client_msg_id": message.client_msg_id,
        "created_at": _iso(message.created_at),
    }
    # Times offered in the chat (an operator's proposal, a freed-slot offer): both sides render them as buttons.
    slots = (message.data or {}).get("slots")
    body["slots"] = slots if isinstance(slots, list) else []
    body["offer"] = (message.data or {}).get("offer") if body["slots"] else None
    # A visit booked, moved or cancelled: the conversation's earlier offers of times are closed by it.
    visit_event = (message.data or {}).get("visit_event")
    body["visit_event"] = visit_event if isinstance(visit_event, str) else ""
    if audience == STAFF:
        body["data"] = message.data
        body["mentions"] = [u.pk for u in message.mentions.all()] if message.kind == Message.Kind.NOTE else []
    return body


def message_payload(
    message: Message,
    *,
    audience: str,
    thread: Thread | None = None,
    attachments: list[Attachment] | None = None,
    languages: list[str] | None = None,
    with_row: bool = True,
) -> dict[str, Any]:
    """The `message.new` event for one audience: the API item plus the message rendered for that side
    (`fragment`, {language: html}) and, for staff, the thread's inbox row (`row`). Services build it once
    per audience after commit, never per socket; the clients insert the fragments as they are."""
    thread = thread or message.thread
    body = message_item(message, audience=audience, thread=thread, attachments=attachments)
    zone = thread.clinic.tz
    if audience == STAFF:
        body["fragment"] = fragments.per_language(
            lambda: fragments.staff_message_html(message, _in_reader_language(message, body), thread), zone=zone, languages=languages
        )
        if with_row:
            body["row"] = inbox_row_payload(thread, languages=languages)
    else:
        side = fragments.PatientSide(thread, with_slots=bool(body["slots"]))
        body["fragment"] = fragments.per_language(
            lambda: fragments.patient_message_html(side.item(message, body)), zone=zone, languages=languages
        )
    return body


def message_event_stub(message: Message, *, audience: str) -> dict[str, Any]:
    """What a service broadcasts for a new message: which message, for which side. Rendering it (Django
    templates, a few ms) is left to the socket servers, once per process, language and side
    (`socket_message_event`), so a send does not pay for languages and rows nobody may be watching."""
    return {"type": "message.new", "thread": message.thread_id, "seq": message.seq, "render": {"message": message.pk, "audience": audience}}


def socket_message_event(message_id: int, *, audience: str, language: str) -> dict[str, Any] | None:
    """The `message.new` event as a socket of that side and language receives it; None if the message is gone."""
    message = (
        Message.objects.select_related(
            "sender", "thread__clinic", "thread__doctor", "thread__patient", "thread__patient__guardian", "thread__assigned_to"
        )
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return None
    attachments = list(message.attachments.all())
    return message_payload(
        message, audience=audience, thread=message.thread, attachments=attachments, languages=[language], with_row=audience == STAFF
    )


def _in_reader_language(message: Message, body: dict[str, Any]) -> dict[str, Any]:
    """The item as the active language says it: a staff event's line is worded for each reader (event_text)."""
    if message.kind != Message.Kind.EVENT:
        return body
    text = event_text(message.data) or message.text
    return {**body, "text": text, "html": message_html(text)}


def inbox_row_payload(thread: Thread, *, languages: list[str] | None = None) -> dict[str, Any]:
    """The thread's row of the inbox list, rendered, with what a list needs to decide whether it shows the row
    (its filters) and where (newest activity first). The link carries no filters: inbox.js adds the page's."""
    url, now = reverse("inbox:thread", args=[thread.pk]), timezone.now()

    def render() -> str:
        row = inbox_row_of(thread)  # in each language: its status and priority labels are translated
        return get_template(fragments.INBOX_ROW).render(fragments.row_context(row, url=url, current=False, clinic=row.clinic, now=now))

    html = fragments.per_language(
        render,
        zone=thread.clinic.tz,
        languages=languages,
    )
    return {
        "id": thread.pk,
        "html": html,
        "status": thread.status,
        "channel": thread.channel,
        "assignee": thread.assigned_to_id,
        "clinic": thread.clinic_id,
        # Only when already loaded (a query on every message otherwise); unknown (None) makes a tag-filtered list re-fetch.
        "tags": [t.pk for t in thread.tags.all()] if "tags" in getattr(thread, "_prefetched_objects_cache", {}) else None,
        "last_activity_at": _iso(thread.last_activity_at),
    }


def _author_name(message: Message, *, audience: str, thread: Thread) -> str:
    if message.author == Message.Author.PATIENT:
        # A portal login has no name of its own: the person (or the guardian writing for a child) has.
        return str(thread.patient.account_holder) if audience == STAFF else ""
    if message.author == Message.Author.STAFF:
        if thread.kind == Thread.Kind.DOCTOR and thread.doctor and thread.doctor.user_id == message.sender_id:
            return thread.doctor.full_name
        return _person(message.sender) if audience == STAFF else (message.sender.first_name if message.sender else "") or thread.clinic.name
    return thread.clinic.name


def thread_payload(thread: Thread, *, audience: str) -> dict[str, Any]:
    """A thread as the `thread.updated` event and as an API list item."""
    body = {
        "type": "thread.updated",
        "id": thread.pk,
        "clinic": {"id": thread.clinic_id, "slug": thread.clinic.slug, "name": thread.clinic.name},
        "patient": {"id": thread.patient_id, "name": thread.patient.full_name},
        "kind": thread.kind,
        "doctor": {"id": thread.doctor_id, "name": thread.doctor.full_name} if thread.doctor is not None else None,
        "channel": thread.channel,
        "last_activity_at": _iso(thread.last_activity_at),
        "last_message_preview": thread.last_message_preview,
        "staff_read_seq": thread.staff_read_seq,
        "patient_read_seq": thread.patient_read_seq,
        "staff_delivered_seq": thread.staff_delivered_seq,
        "patient_delivered_seq": thread.patient_delivered_seq,
    }
    if audience == STAFF:
        body.update(
            last_seq=thread.last_seq,
            unread=thread.staff_unread,
            status=thread.status,
            snoozed_until=_iso(thread.snoozed_until),
            assigned_to={"id": thread.assigned_to_id, "name": _person(thread.assigned_to)} if thread.assigned_to_id else None,
            team=thread.team_id,
            priority=thread.priority,
            sensitive=thread.sensitive,
            tags=[{"id": t.pk, "name": t.name} for t in thread.tags.all()],
            waiting_since=_iso(thread.waiting_since),
            first_response_at=_iso(thread.first_response_at),
        )
    else:
        body.update(last_seq=thread.last_public_seq, unread=thread.patient_unread)
    return body


def read_payload(thread: Thread, *, side: str, seq: int) -> dict[str, Any]:
    return {"type": "message.read", "thread": thread.pk, "side": side, "seq": seq}


# --- API shapes (OpenAPI) -------------------------------------------------------------------


class _Rendered(serializers.Serializer):
    audience_of = staticmethod(lambda context: context.get("audience", PATIENT))

    def to_representation(self, instance):
        return self.render(instance, audience=self.audience_of(self.context))


class AttachmentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField()
    thumbnail_url = serializers.CharField(allow_null=True)

    def to_representation(self, instance):
        return attachment_payload(instance)


class MessageOut(_Rendered):
    thread = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="Number of the message in its thread; grows by one, gaps are staff-only rows.")
    author = serializers.ChoiceField(choices=Message.Author.choices)
    author_name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Message.Kind.choices)
    text = serializers.CharField(help_text="Plain text as written. Never interpret it as HTML.")
    html = serializers.CharField(help_text="The text escaped, with links made clickable and line breaks as <br>.")
    attachments = AttachmentOut(many=True)
    client_msg_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    slots = serializers.ListField(
        child=serializers.DictField(), help_text="Times offered to book with one tap: doctor, service, starts_at, label (and names)."
    )
    offer = serializers.IntegerField(allow_null=True, help_text="The freed-slot offer these times belong to; send it with the booking.")
    visit_event = serializers.CharField(
        help_text="booked, moved or cancelled when the message reports a visit (it closes the times offered before it); else empty."
    )

    @staticmethod
    def render(instance, *, audience):
        return message_item(instance, audience=audience)


class ThreadOut(_Rendered):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Thread.Kind.choices)
    channel = serializers.ChoiceField(choices=Thread.Channel.choices)
    last_activity_at = serializers.DateTimeField()
    last_message_preview = serializers.CharField()
    last_seq = serializers.IntegerField()
    unread = serializers.IntegerField()
    staff_read_seq = serializers.IntegerField()
    patient_read_seq = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Thread.Status.choices, required=False, help_text="Staff only.")

    @staticmethod
    def render(instance, *, audience):
        return thread_payload(instance, audience=audience)
