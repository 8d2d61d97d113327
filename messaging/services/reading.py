"""Read and delivery markers: how far each side has read (blue ticks) and received (two ticks)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from messaging import realtime
from messaging.models import Message, Thread
from messaging.payloads import PATIENT, STAFF, read_payload
from messaging.services.acting import side_of
from messaging.services.broadcast import inbox_changed


def thread_mark_read(*, thread: Thread, actor: Any, seq: int | None = None) -> Thread:
    """Everything up to `seq` (default: the newest) is read by the actor's side. Never moves back."""
    side = STAFF if side_of(actor, thread) == Message.Author.STAFF else PATIENT
    with transaction.atomic():
        locked: Thread = Thread.objects.select_for_update().get(pk=thread.pk)
        newest = locked.last_seq if side == STAFF else locked.last_public_seq
        seq = newest if seq is None else max(0, min(int(seq), newest))
        if seq <= getattr(locked, f"{side}_read_seq"):
            return locked
        incoming = Message.objects.filter(thread=locked, seq__gt=seq)
        if side == STAFF:
            unread = incoming.filter(author=Message.Author.PATIENT).count()
        else:
            unread = incoming.exclude(author=Message.Author.PATIENT).exclude(kind__in=(Message.Kind.NOTE, Message.Kind.EVENT)).count()
        setattr(locked, f"{side}_read_seq", seq)
        setattr(locked, f"{side}_delivered_seq", max(seq, getattr(locked, f"{side}_delivered_seq")))
        setattr(locked, f"{side}_unread", unread)
        setattr(locked, f"{side}_read_at", timezone.now())
        locked.save(update_fields=[f"{side}_read_seq", f"{side}_delivered_seq", f"{side}_unread", f"{side}_read_at"])
        if side == STAFF:
            inbox_changed(locked.clinic_id)
    realtime.send_on_commit([(_both_sides(locked), read_payload(locked, side=side, seq=seq))])
    return locked


def thread_mark_delivered(*, thread: Thread, actor: Any, seq: int) -> None:
    """The reader's device has messages up to `seq` (two ticks). Cheap: one conditional UPDATE."""
    side = STAFF if side_of(actor, thread) == Message.Author.STAFF else PATIENT
    updated = Thread.objects.filter(pk=thread.pk, **{f"{side}_delivered_seq__lt": seq}, last_seq__gte=seq).update(
        **{f"{side}_delivered_seq": seq}
    )
    if updated:
        realtime.send_on_commit([(_both_sides(thread), {"type": "message.delivered", "thread": thread.pk, "side": side, "seq": seq})])


def _both_sides(thread: Thread) -> list[str]:
    return realtime.staff_groups(thread) + realtime.patient_groups(thread)
