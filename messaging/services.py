"""Writes for conversations. `send_message` is the only way a message comes to exist.

Portal, API, the admin inbox, the socket, bots and future messenger integrations
all call it, so validation, consent, throttling, numbering, counters, the outbox
and the realtime broadcast happen the same way for each.
"""

from __future__ import annotations

import re
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from clinics.models import Clinic, Doctor, Membership, Tag
from clinics.tenancy import FRONT_DESK, Role, clinic_roles, portal_holder_id, staff_can_view
from messaging import realtime, sql
from messaging.files import inspect_upload
from messaging.models import MAX_TEXT, STAFF_ONLY_KINDS, Attachment, Message, SocketConnection, Team, Thread, ThreadAccess
from messaging.payloads import event_text, message_payload, read_payload, thread_payload
from messaging.selectors import REPLY_TTL, VIEW_TTL, alive_since, inbox_version_key, users_online, viewers_key, viewers_of
from messaging.text import preview
from notifications.models import Notification
from patients.models import Patient, PatientInClinic
from patients.selectors import consent_is_given
from patients.services import Attribution, ConsentRequired, consent_require, contact_start

SEND_LIMIT_PER_MINUTE = 30
MENTION = re.compile(r"@([\w.+-]{2,150})")
# A staff reply that is nothing but "/word" is a canned-answer shortcode left unexpanded, never meant for the patient.
SHORTCODE_ONLY = re.compile(r"/[\w-]+")


class SendingTooFast(Exception):
    """More than SEND_LIMIT_PER_MINUTE messages from one person in a minute."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(_("You are sending messages too fast. Wait %(seconds)s s and try again.") % {"seconds": retry_after})


# --- who is acting -----------------------------------------------------------------------


def _side_of(user: Any, thread: Thread) -> str:
    """'patient' or 'staff' for a user acting in this thread, or PermissionDenied.

    No query for staff: the thread's clinic (and doctor) against the roles cached on the user.
    """
    holder_id = portal_holder_id(user)
    if holder_id is not None:
        if holder_id in (thread.patient_id, thread.patient.guardian_id):
            return Message.Author.PATIENT
        raise PermissionDenied(_("This conversation is not yours."))
    if staff_can_view(user, thread):
        return Message.Author.STAFF
    raise PermissionDenied(_("This conversation is not in your clinic."))


def _throttle(user: Any) -> None:
    """Fixed one-minute window per user, counted in the shared cache (Redis in production)."""
    window = _SendWindow.count(user)
    if window.over:
        raise SendingTooFast(retry_after=window.retry_after)


@dataclass(frozen=True)
class _SendWindow:
    """One user's message count in the current minute, after counting this attempt."""

    key: str
    value: int
    retry_after: int

    @classmethod
    def count(cls, user: Any) -> _SendWindow:
        now = int(timezone.now().timestamp())
        key = f"msg-rate:{user.pk}:{now // 60}"
        return cls(key=key, value=_cache_count(key, timeout=90), retry_after=60 - now % 60 or 1)

    @property
    def over(self) -> bool:
        return self.value > SEND_LIMIT_PER_MINUTE

    def uncount(self) -> None:
        """The attempt turned out not to count (a resend, or refused for consent)."""
        with suppress(ValueError):  # the window has passed
            cache.decr(self.key)


_COUNT = """
local value = redis.call('INCR', KEYS[1])
if value == 1 and ARGV[1] ~= '' then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return value
"""
_redis_counters: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()


def _cache_count(key: str, *, timeout: int | None) -> int:
    """Add one to a counter in the cache, creating it (with `timeout`) if missing; returns the new value.

    On Redis one command (a script: INCR, and EXPIRE when it created the key): the cache
    API's add + incr take three round trips, and this runs twice for every message.
    Values stay readable through `cache.get`.
    """
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        script = _redis_counters.get(backend._cache)
        if script is None:  # building a redis.Redis costs more than the round trip: one per cache client
            script = _redis_counters[backend._cache] = backend._cache.get_client(write=True).register_script(_COUNT)
        return script(keys=[backend.make_and_validate_key(key)], args=["" if timeout is None else timeout])
    backend.add(key, 0, timeout=timeout)
    try:
        return backend.incr(key)
    except ValueError:  # evicted between add and incr
        backend.set(key, 1, timeout=timeout)
        return 1


# --- threads -------------------------------------------------------------------------------


def thread_open(
    *,
    patient: Patient,
    clinic: Clinic,
    actor: Any,
    doctor: Doctor | None = None,
    channel: str = Thread.Channel.WEB,
    attribution: Attribution | None = None,
) -> tuple[Thread, bool]:
    """The patient's (or dependant's) thread with the clinic or one of its doctors; created on first use.

    There is one such thread per person, clinic and doctor: coming back weeks later continues it.
    `actor` None is the system itself (a visit booked by phone is announced in the clinic thread).
    """
    if actor is not None and portal_holder_id(actor) != patient.account_holder.pk:
        raise PermissionDenied(_("You can write only for yourself and your family."))
    if doctor is not None and (doctor.clinic_id != clinic.pk or not doctor.is_active or doctor.user_id is None):
        raise ValidationError({"doctor": _("This doctor does not answer questions in this clinic.")}, code="doctor")
    consent_require(patient=patient, clinic=clinic)
    kind = Thread.Kind.DOCTOR if doctor else Thread.Kind.CLINIC
    lookup = {"clinic": clinic, "patient": patient, "kind": kind, "doctor": doctor}
    existing = Thread.objects.filter(**lookup).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            contact, _created = contact_start(patient=patient, clinic=clinic, attribution=attribution)
            contact = _live_card(contact)
            thread = Thread.objects.create(**lookup, contact=contact, channel=channel)
            _inbox_changed(clinic.pk)
            audit_record(actor=actor, action="thread.opened", clinic=clinic, patient=patient, target=thread)
    except IntegrityError:  # opened at the same moment from another tab
        return Thread.objects.get(**lookup), False
    transaction.on_commit(lambda: realtime.send_to_groups(realtime.staff_groups(thread), thread_payload(thread, audience="staff")))
    return thread, True


def _live_card(contact: PatientInClinic) -> PatientInClinic:
    while contact.merged_into_id:
        contact = contact.merged_into
    return contact


# --- messages ------------------------------------------------------------------------------


def send_message(
    *,
    thread: Thread,
    sender: Any,
    text: str = "",
    kind: str = Message.Kind.TEXT,
    client_msg_id: str = "",
    attachment_ids: list[int] | tuple[int, ...] = (),
    author: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[Message, bool]:
    """Validate, store and announce one message. Returns (message, created).

    A resend with the same `client_msg_id` by the same sender returns the stored
    message (created=False): a flaky network never makes a second copy.
    `author` is given only for system and bot messages (sender None); otherwise
    it follows from who the sender is in this thread.
    """
    text = (text or "").strip()
    client_msg_id = (client_msg_id or "").strip()[:64]
    if author in (Message.Author.SYSTEM, Message.Author.BOT):
        if sender is not None:
            raise ValueError("system and bot messages have no sender")
    else:
        author = _side_of(sender, thread)
    if kind == Message.Kind.NOTE and author != Message.Author.STAFF:
        raise PermissionDenied(_("Only staff can write private notes."))
    if kind == Message.Kind.EVENT and author not in (Message.Author.SYSTEM, Message.Author.STAFF):
        raise PermissionDenied(_("Only the system records events."))
    if len(text) > MAX_TEXT:
        raise ValidationError(
            {"text": _("The message is too long: %(length)s characters, at most %(limit)s.") % {"length": len(text), "limit": MAX_TEXT}},
            code="too_long",
        )
    attachment_ids = list(dict.fromkeys(int(pk) for pk in attachment_ids))
    if author == Message.Author.STAFF and kind == Message.Kind.TEXT and not attachment_ids and SHORTCODE_ONLY.fullmatch(text):
        raise ValidationError(
            {"text": _("%(text)s is a canned-answer shortcode, not a reply: choose an answer from the list. Nothing was sent.")
             % {"text": text}},
            code="shortcode",
        )  # fmt: skip
    if not text and not attachment_ids:
        raise ValidationError({"text": _("Write a message or attach a file.")}, code="empty")
    if attachment_ids and not text and kind == Message.Kind.TEXT:
        kind = Message.Kind.ATTACHMENT

    new = _NewMessage(
        thread=thread,
        sender=sender,
        author=author,
        kind=kind,
        text=text,
        client_msg_id=client_msg_id if sender is not None else "",
        attachment_ids=attachment_ids,
        data=data or {},
    )
    try:
        if connection.vendor == "postgresql":
            message, created = _store_postgresql(new)
        else:
            with transaction.atomic():
                message, created = _store(new)
    except IntegrityError:
        if new.client_msg_id:  # the same resend raced us: it won, return its row
            return Message.objects.get(thread=thread, sender=sender, client_msg_id=client_msg_id), False
        raise
    if created:
        transaction.on_commit(lambda: _announce(message, thread=message.thread, attachments=message._sent_attachments))
    return message, created


@dataclass(frozen=True)
class _NewMessage:
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


def _store(new: _NewMessage) -> tuple[Message, bool]:
    """The portable store (SQLite, the embedded default): the ORM, step by step, in the caller's transaction."""
    thread = new.thread
    stored = _stored_copy(new)
    if stored is not None:
        return stored, False
    if new.needs_consent:
        consent_require(patient=thread.patient, clinic=thread.clinic)
    if new.by_a_person:
        _throttle(new.sender)

    locked = (
        Thread.objects.select_for_update(of=("self",)).select_related("patient", "patient__guardian", "doctor", "clinic").get(pk=thread.pk)
    )
    now = timezone.now()
    seq = locked.last_seq + 1
    message = Message.objects.create(
        thread=locked,
        seq=seq,
        author=new.author,
        sender=new.sender,
        kind=new.kind,
        text=new.text,
        data=new.data,
        client_msg_id=new.client_msg_id,
        created_at=now,
    )
    changes: dict[str, Any] = {"last_seq": seq, "last_activity_at": now}
    if new.is_public:
        changes["last_public_seq"] = seq
        changes["last_message_preview"] = "" if locked.sensitive else new.preview
    if new.author == Message.Author.PATIENT:
        changes.update(
            staff_unread=F("staff_unread") + 1,
            patient_read_seq=seq,
            patient_delivered_seq=seq,
            patient_unread=0,
            waiting_since=locked.waiting_since or now,
        )
        if locked.status in sql.REOPENED_BY_PATIENT:
            changes.update(status=Thread.Status.OPEN, snoozed_until=None)  # the patient is back: the thread needs an answer
    elif new.author == Message.Author.STAFF:
        changes.update(staff_read_seq=seq, staff_delivered_seq=seq, staff_unread=0, staff_read_at=now)
        if new.is_public:
            changes.update(patient_unread=F("patient_unread") + 1, waiting_since=None)
            if locked.first_response_at is None:
                changes["first_response_at"] = now
    elif new.is_public:  # system and bot messages the patient should read
        changes["patient_unread"] = F("patient_unread") + 1
    Thread.objects.filter(pk=locked.pk).update(**changes)
    locked.refresh_from_db(fields=list(changes))  # the row as written, as the PostgreSQL store returns it
    _note_offline_recipients(message=message, thread=locked)
    _finish(message, new)
    return message, True


def _finish(message: Message, new: _NewMessage) -> None:
    """What every store does after the row exists: files, mentions, the inbox counts."""
    message._sent_attachments = _attach(message, new) if new.attachment_ids else []  # announced without reading them again
    if new.kind == Message.Kind.NOTE:
        _mention(message=message, thread=message.thread)
    _inbox_changed(message.thread.clinic_id)


def _attach(message: Message, new: _NewMessage) -> list[Attachment]:
    """Bind the uploaded files to the message: each must be the sender's, in this thread, not sent yet."""
    attachments = list(
        Attachment.objects.select_for_update().filter(pk__in=new.attachment_ids, thread_id=message.thread_id, message__isnull=True)
    )
    if len(attachments) != len(new.attachment_ids) or any(a.uploaded_by_id != getattr(new.sender, "pk", None) for a in attachments):
        raise ValidationError({"attachments": _("A file is not available: upload it again.")}, code="attachment")
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(message=message)
    for attachment in attachments:
        attachment.message = message
    return attachments


def _store_postgresql(new: _NewMessage) -> tuple[Message, bool]:
    """The PostgreSQL store: one statement, in one round trip where it can be.

    send_message is the hottest write of the product (every socket frame, every portal
    post). Through the ORM it took a query each for the resend lookup, the consent
    check, the row lock, the insert, the counters, the online check and the outbox, each
    compiled by Django, most of a send's CPU. Here one statement (messaging/sql.py) does
    all of it, the thread's UPDATE taking the row lock that numbers the message; the
    rules are those of `_store`, and the test suite runs on both.

    A single statement is atomic on its own, so a plain message outside a transaction
    sends no BEGIN and COMMIT (two round trips of the four a send needs). Files and
    mentions take more statements, and a caller's transaction needs a savepoint to survive
    a racing resend: then it runs in `transaction.atomic()`. The throttle is counted first
    (it must refuse before anything is written) and given back for resends and refusals
    for consent, which the ORM store checks before counting.
    """
    thread = new.thread
    window = _SendWindow.count(new.sender) if new.by_a_person else None
    if window is not None and window.over:
        stored = _stored_copy(new)  # a resend is answered even at the limit; consent refusal comes first too
        if stored is not None or (new.needs_consent and not consent_is_given(patient=thread.patient, clinic=thread.clinic)):
            window.uncount()
            if stored is not None:
                return stored, False
            raise ConsentRequired(thread.clinic)
        raise SendingTooFast(retry_after=window.retry_after)
    more_statements = bool(new.attachment_ids) or (new.kind == Message.Kind.NOTE and MENTION.search(new.text))
    try:
        with transaction.atomic() if more_statements or connection.in_atomic_block else nullcontext():
            row = sql.send(new, now=timezone.now(), alive_since=alive_since())
            if row.message_id is not None:
                message = _written(new, row)
                _finish(message, new)
    except IntegrityError:
        if window is not None:
            window.uncount()
        raise
    if row.stored_id is not None or not row.consent_given:
        if window is not None:
            window.uncount()
        if row.stored_id is not None:
            return Message.objects.get(pk=row.stored_id), False
        raise ConsentRequired(thread.clinic)
    if row.message_id is None:
        raise Thread.DoesNotExist("Thread matching query does not exist.")
    return message, True


def _stored_copy(new: _NewMessage) -> Message | None:
    if not new.client_msg_id:
        return None
    return Message.objects.filter(thread=new.thread, sender=new.sender, client_msg_id=new.client_msg_id).first()


def _written(new: _NewMessage, row: sql.Sent) -> Message:
    """The Message the statement wrote, on the thread row as it updated it (relations kept from the caller's)."""
    thread, fresh = new.thread, row.thread
    for name in ("clinic", "patient", "doctor", "contact", "assigned_to", "team"):
        field = Thread._meta.get_field(name)
        if field.is_cached(thread) and getattr(thread, field.attname) == getattr(fresh, field.attname):
            field.set_cached_value(fresh, field.get_cached_value(thread))
    message = Message(
        id=row.message_id,
        thread=fresh,
        seq=fresh.last_seq,
        author=new.author,
        sender=new.sender,
        kind=new.kind,
        text=new.text,
        data=new.data,
        client_msg_id=new.client_msg_id,
        created_at=row.now,
    )
    message._state.adding, message._state.db = False, connection.alias
    return message


def _note_offline_recipients(*, message: Message, thread: Thread) -> bool:
    """Write the outbox rows for people who will not see this message live. Delivery is the notifications app's."""
    recipients: list[Any] = []
    if message.author in (Message.Author.STAFF, Message.Author.SYSTEM, Message.Author.BOT) and message.is_public:
        holder = thread.patient.guardian if thread.patient.guardian_id else thread.patient
        if holder.user_id:
            recipients.append(holder.user_id)
    elif message.author == Message.Author.PATIENT:
        if thread.assigned_to_id:
            recipients.append(thread.assigned_to_id)
        elif thread.doctor_id and thread.doctor.user_id:
            recipients.append(thread.doctor.user_id)
    online = users_online(recipients) if recipients else set()
    offline = [uid for uid in recipients if uid not in online]
    # The offline rule: sent only if still unread after the clinic's minutes; a burst shares the notice already pending.
    waiting = (
        set(
            Notification.objects.filter(
                recipient_id__in=offline, thread=thread, kind=Notification.Kind.MESSAGE, status=Notification.Status.PENDING
            ).values_list("recipient_id", flat=True)
        )
        if offline
        else set()
    )
    not_before = message.created_at + timedelta(minutes=thread.clinic.offline_notice_minutes)
    Notification.objects.bulk_create(
        Notification(
            clinic_id=thread.clinic_id,
            recipient_id=uid,
            kind=Notification.Kind.MESSAGE,
            thread=thread,
            message=message,
            created_at=message.created_at,
            not_before=not_before,
        )
        for uid in offline
        if uid not in waiting
    )
    return bool(offline)


def _mention(*, message: Message, thread: Thread) -> None:
    names = set(MENTION.findall(message.text))
    if not names:
        return
    staff = list(
        Membership.objects.filter(clinic_id=thread.clinic_id, is_active=True, user__username__in=names).values_list("user_id", flat=True)
    )
    message.mentions.set(staff)
    online = users_online(staff) if staff else set()
    Notification.objects.bulk_create(
        Notification(clinic_id=thread.clinic_id, recipient_id=uid, kind=Notification.Kind.MENTION, thread=thread, message=message)
        for uid in staff
        if uid not in online
    )
    transaction.on_commit(
        lambda: [
            realtime.send_to_groups([realtime.user_group(uid)], {"type": "mention", "thread": thread.pk, "seq": message.seq})
            for uid in staff
        ]
    )


def _inbox_changed(clinic_id: int) -> None:
    """Invalidate the cached inbox counts of the clinic (selectors._cached_counts), after commit."""
    transaction.on_commit(lambda: _cache_count(inbox_version_key(clinic_id), timeout=None))


def _announce(message: Message, *, thread: Thread | None = None, attachments: list[Attachment] | None = None) -> None:
    """Broadcast a committed message. send_message passes the rows it already holds (no re-reading)."""
    if thread is None:
        thread = Thread.objects.select_related("patient", "patient__guardian", "doctor", "clinic").get(pk=message.thread_id)
    if attachments is None:
        attachments = list(message.attachments.all())
    events = [(realtime.staff_groups(thread), message_payload(message, audience="staff", thread=thread, attachments=attachments))]
    if message.is_public:
        events.append(
            (realtime.patient_groups(thread), message_payload(message, audience="patient", thread=thread, attachments=attachments))
        )
    realtime.send_events(events)


# --- read and delivery markers -------------------------------------------------------------


def thread_mark_read(*, thread: Thread, reader: Any, seq: int | None = None) -> Thread:
    """Everything up to `seq` (default: the newest) is read by the reader's side. Never moves back."""
    side = _side_of(reader, thread)
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread.pk)
        newest = locked.last_seq if side == Message.Author.STAFF else locked.last_public_seq
        seq = newest if seq is None else max(0, min(int(seq), newest))
        field = "staff" if side == Message.Author.STAFF else "patient"
        if seq <= getattr(locked, f"{field}_read_seq"):
            return locked
        incoming = Message.objects.filter(thread=locked, seq__gt=seq)
        if side == Message.Author.STAFF:
            unread = incoming.filter(author=Message.Author.PATIENT).count()
        else:
            unread = incoming.exclude(author=Message.Author.PATIENT).exclude(kind__in=(Message.Kind.NOTE, Message.Kind.EVENT)).count()
        now = timezone.now()
        setattr(locked, f"{field}_read_seq", seq)
        setattr(locked, f"{field}_delivered_seq", max(seq, getattr(locked, f"{field}_delivered_seq")))
        setattr(locked, f"{field}_unread", unread)
        setattr(locked, f"{field}_read_at", now)
        locked.save(update_fields=[f"{field}_read_seq", f"{field}_delivered_seq", f"{field}_unread", f"{field}_read_at"])
        if side == Message.Author.STAFF:
            _inbox_changed(locked.clinic_id)
    payload = read_payload(locked, side=field, seq=seq)
    transaction.on_commit(lambda: realtime.send_to_groups(realtime.staff_groups(locked) + realtime.patient_groups(locked), payload))
    return locked


def thread_mark_delivered(*, thread: Thread, reader: Any, seq: int) -> None:
    """The reader's device has messages up to `seq` (two ticks). Cheap: one conditional UPDATE."""
    side = "staff" if _side_of(reader, thread) == Message.Author.STAFF else "patient"
    updated = Thread.objects.filter(pk=thread.pk, **{f"{side}_delivered_seq__lt": seq}, last_seq__gte=seq).update(
        **{f"{side}_delivered_seq": seq}
    )
    if updated:
        payload = {"type": "message.delivered", "thread": thread.pk, "side": side, "seq": seq}
        transaction.on_commit(lambda: realtime.send_to_groups(realtime.staff_groups(thread) + realtime.patient_groups(thread), payload))


# --- staff actions ------------------------------------------------------------------------


def _staff_thread(actor: Any, thread: Thread) -> Thread:
    if _side_of(actor, thread) != Message.Author.STAFF:
        raise PermissionDenied(_("Only the clinic's staff can do this."))
    return Thread.objects.select_for_update(of=("self",)).select_related("patient", "doctor", "clinic").get(pk=thread.pk)


def _event(*, thread: Thread, actor: Any, event: str, **data: Any) -> None:
    """A staff-only line in the history ("Olga assigned the thread to Mark").

    The facts go to `data`; each reader sees the line in their own language (payloads.event_text).
    """
    seq = thread.last_seq + 1
    data = {"event": event, "actor": _name(actor), **data}
    message = Message.objects.create(
        thread=thread,
        seq=seq,
        author=Message.Author.STAFF if actor else Message.Author.SYSTEM,
        sender=actor,
        kind=Message.Kind.EVENT,
        text=event_text(data),
        data=data,
    )
    Thread.objects.filter(pk=thread.pk).update(last_seq=seq, staff_read_seq=seq)
    thread.last_seq = seq
    transaction.on_commit(lambda: _announce(message))


def _changed(thread: Thread, actor: Any, action: str, data: dict[str, Any]) -> Thread:
    _inbox_changed(thread.clinic_id)
    audit_record(actor=actor, action=f"thread.{action}", clinic=thread.clinic, patient=thread.patient, target=thread, data=data)
    fresh = Thread.objects.select_related("patient", "doctor", "clinic", "assigned_to", "team").get(pk=thread.pk)
    transaction.on_commit(lambda: realtime.send_to_groups(realtime.staff_groups(fresh), thread_payload(fresh, audience="staff")))
    return fresh


def _name(user: Any) -> str:
    return user.display_name if user else ""


def thread_assign(*, actor: Any, thread: Thread, assignee: Any | None) -> Thread:
    """Give the thread to a staff member of its clinic (or take it back to the common queue)."""
    with transaction.atomic():
        locked = _staff_thread(actor, thread)
        if assignee is not None:
            role = clinic_roles(assignee).get(locked.clinic_id)
            allowed = role in FRONT_DESK or (role == Role.DOCTOR and locked.doctor_id and locked.doctor.user_id == assignee.pk)
            if not allowed:
                raise ValidationError({"assignee": _("This person cannot answer this thread.")}, code="assignee")
        if locked.assigned_to_id == getattr(assignee, "pk", None):
            return locked
        locked.assigned_to = assignee
        locked.save(update_fields=["assigned_to"])
        _event(thread=locked, actor=actor, event="assigned", assignee=getattr(assignee, "pk", None), assignee_name=_name(assignee))
        if assignee is not None and assignee.pk != getattr(actor, "pk", None):
            # Someone else gave it to them: they learn by e-mail if they are not looking (notifications dispatch).
            Notification.objects.create(
                clinic_id=locked.clinic_id, recipient=assignee, kind=Notification.Kind.ASSIGNED, thread=locked, reason="assigned"
            )
        return _changed(locked, actor, "assigned", {"assignee": getattr(assignee, "pk", None)})


def thread_set_status(*, actor: Any, thread: Thread, status: str, snoozed_until: datetime | None = None) -> Thread:
    if status not in Thread.Status.values:
        raise ValidationError({"status": _("Unknown status.")}, code="status")
    if status == Thread.Status.SNOOZED:
        if snoozed_until is None or snoozed_until <= timezone.now():
            raise ValidationError({"snoozed_until": _("Choose a time in the future to snooze until.")}, code="snooze")
        if snoozed_until > timezone.now() + timedelta(days=90):
            raise ValidationError({"snoozed_until": _("Snooze for at most 90 days.")}, code="snooze")
    else:
        snoozed_until = None
    with transaction.atomic():
        locked = _staff_thread(actor, thread)
        if locked.status == status and locked.snoozed_until == snoozed_until:
            return locked
        old = locked.status
        locked.status, locked.snoozed_until = status, snoozed_until
        locked.save(update_fields=["status", "snoozed_until"])
        _event(
            thread=locked,
            actor=actor,
            event="status",
            old=old,
            new=status,
        )
        return _changed(locked, actor, "status", {"old": old, "new": status})


def threads_wake_snoozed() -> int:
    """Snoozed threads whose time has come go back to the open queue (a timed job, every minute)."""
    due = list(Thread.objects.filter(status=Thread.Status.SNOOZED, snoozed_until__lte=timezone.now()).values_list("pk", flat=True))
    for thread_id in due:
        with transaction.atomic():
            locked = Thread.objects.select_for_update(of=("self",)).select_related("patient", "clinic", "doctor").get(pk=thread_id)
            if locked.status != Thread.Status.SNOOZED:
                continue
            locked.status, locked.snoozed_until = Thread.Status.OPEN, None
            locked.save(update_fields=["status", "snoozed_until"])
            _event(thread=locked, actor=None, event="woke")
            _inbox_changed(locked.clinic_id)
            fresh = Thread.objects.select_related("patient", "doctor", "clinic", "assigned_to", "team").get(pk=thread_id)
            transaction.on_commit(
                lambda fresh=fresh: realtime.send_to_groups(realtime.staff_groups(fresh), thread_payload(fresh, audience="staff"))
            )
    return len(due)


def thread_update(
    *,
    actor: Any,
    thread: Thread,
    tags: list[Tag] | None = None,
    priority: int | None = None,
    team: Team | None | bool = False,
    sensitive: bool | None = None,
) -> Thread:
    """Tags, priority, team and the sensitive flag; only what is passed changes."""
    with transaction.atomic():
        locked = _staff_thread(actor, thread)
        data: dict[str, Any] = {}
        if tags is not None:
            if any(tag.clinic_id != locked.clinic_id for tag in tags):
                raise ValidationError({"tags": _("A tag of another clinic cannot be used here.")}, code="tags")
            locked.tags.set(tags)
            data["tags"] = sorted(tag.pk for tag in tags)
        if priority is not None:
            if priority not in Thread.Priority.values:
                raise ValidationError({"priority": _("Unknown priority.")}, code="priority")
            locked.priority = priority
            data["priority"] = priority
        if team is not False:
            if team is not None and team.clinic_id != locked.clinic_id:
                raise ValidationError({"team": _("A team of another clinic cannot be used here.")}, code="team")
            locked.team = team
            data["team"] = getattr(team, "pk", None)
        if sensitive is not None:
            locked.sensitive = bool(sensitive)
            if locked.sensitive:
                locked.last_message_preview = ""
            data["sensitive"] = locked.sensitive
        locked.save(update_fields=["priority", "team", "sensitive", "last_message_preview"])
        return _changed(locked, actor, "updated", data)


def thread_access_record(*, thread: Thread, user: Any, via: str) -> None:
    """A staff member opened the thread: kept for the owner's review."""
    ThreadAccess.objects.create(thread=thread, user=user, via=via)


# --- attachments --------------------------------------------------------------------------


def attachment_upload(*, thread: Thread, uploader: Any, upload: Any) -> Attachment:
    """Check and store a file for a message that is about to be sent (send_message attaches it)."""
    side = _side_of(uploader, thread)
    if side == Message.Author.PATIENT:
        consent_require(patient=thread.patient, clinic=thread.clinic)
    inspected = inspect_upload(upload)
    name = (getattr(upload, "name", "") or "file")[-200:]
    attachment = Attachment(
        thread=thread,
        uploaded_by=uploader,
        content_type=inspected.content_type,
        size=upload.size,
        original_name=name,
        width=inspected.width,
        height=inspected.height,
    )
    attachment.file.save(name, upload, save=False)
    if inspected.thumbnail is not None:
        attachment.thumbnail.save("thumb.jpg", inspected.thumbnail, save=False)
    try:
        with transaction.atomic():
            attachment.save()
    except Exception:
        attachment.file.delete(save=False)
        if attachment.thumbnail:
            attachment.thumbnail.delete(save=False)
        raise
    return attachment


def attachments_purge_unsent(*, older_than: timedelta = timedelta(hours=24)) -> int:
    """Files uploaded but never sent (a closed tab) are removed after a day."""
    stale = Attachment.objects.filter(message__isnull=True, created_at__lt=timezone.now() - older_than)
    count = 0
    for attachment in stale:
        attachment.file.delete(save=False)
        if attachment.thumbnail:
            attachment.thumbnail.delete(save=False)
        attachment.delete()
        count += 1
    return count


# --- contacts -----------------------------------------------------------------------------


def contacts_merge(*, actor: Any, keep: PatientInClinic, merge: PatientInClinic) -> PatientInClinic:
    """Two cards of one person in one clinic become one: threads, tags and notes move to `keep`.

    The people (portal accounts) stay as they are: each still sees only their own threads.
    """
    if keep.pk == merge.pk:
        raise ValidationError({"merge": _("Choose two different contacts.")}, code="same")
    if keep.clinic_id != merge.clinic_id:
        raise ValidationError({"merge": _("Contacts of different clinics cannot be merged.")}, code="clinic")
    if not PatientInClinic.objects.editable_by(actor).filter(pk__in=[keep.pk, merge.pk]).count() == 2:
        raise PermissionDenied(_("Your role in this clinic does not allow this."))
    with transaction.atomic():
        keep, merge = (PatientInClinic.objects.select_for_update().get(pk=pk) for pk in (keep.pk, merge.pk))
        if keep.merged_into_id or merge.merged_into_id:
            raise ValidationError({"merge": _("One of the contacts has already been merged.")}, code="merged")
        moved = Thread.objects.filter(contact=merge).update(contact=keep)
        keep.tags.add(*merge.tags.all())
        if merge.notes:
            keep.notes = f"{keep.notes}\n\n{merge.notes}".strip()[:5000]
        keep.assigned_operator_id = keep.assigned_operator_id or merge.assigned_operator_id
        keep.save(update_fields=["notes", "assigned_operator"])
        merge.merged_into = keep
        merge.save(update_fields=["merged_into"])
        audit_record(
            actor=actor,
            action="contact.merged",
            clinic=keep.clinic,
            patient=keep.patient,
            target=keep,
            data={"merged": merge.pk, "threads_moved": moved},
        )
    return keep


# --- presence: open sockets and who is looking at a thread ---------------------------------


def socket_opened(*, user_id: int, channel_name: str) -> None:
    """Open sockets are rows: any process can ask whether a person is online (see selectors.user_is_online)."""
    now = timezone.now()
    SocketConnection.objects.update_or_create(channel_name=channel_name, defaults={"user_id": user_id, "seen_at": now, "connected_at": now})


def socket_seen(*, channel_name: str) -> None:
    SocketConnection.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


def socket_closed(*, channel_name: str) -> None:
    SocketConnection.objects.filter(channel_name=channel_name).delete()


def sockets_purge_stale() -> int:
    """Rows of a crashed server: three missed heartbeats."""
    deleted, _count = SocketConnection.objects.filter(seen_at__lt=alive_since()).delete()
    return deleted


def thread_view_mark(*, thread_id: int, user_id: int, name: str, viewing: bool = True, replying: bool | None = None) -> dict[str, Any]:
    """Refresh (or drop) one staff member's mark on a thread (the soft lock); returns the current viewers.

    Read-modify-write in the cache: two simultaneous marks may lose one until the next
    refresh a few seconds later. That is acceptable for a soft lock, not for data.
    """
    now = timezone.now().timestamp()
    marks: dict[int, dict[str, Any]] = cache.get(viewers_key(thread_id)) or {}
    marks = {uid: m for uid, m in marks.items() if m["until"] > now}  # expired marks are dropped for good
    if viewing:
        mark = marks.get(user_id, {"name": name})
        mark["until"] = now + VIEW_TTL
        if replying is not None:
            mark["replying_until"] = now + REPLY_TTL if replying else 0
        marks[user_id] = mark
    else:
        marks.pop(user_id, None)
    cache.set(viewers_key(thread_id), marks, timeout=VIEW_TTL * 2)
    return viewers_of(marks, now=now)
