"""Threads: opening one, the staff's actions on it (assign, status, tags...), waking snoozed ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from clinics.models import Clinic, Doctor, Tag
from clinics.tenancy import FRONT_DESK, Role, clinic_roles, require_acts_for
from messaging.models import Message, Team, Thread, ThreadAccess
from messaging.payloads import event_text
from messaging.services.acting import side_of
from messaging.services.broadcast import announce_message, announce_thread_change, inbox_changed
from notifications.models import Notification
from patients.models import Contact, Patient
from patients.services import Attribution, consent_require, contact_start


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
    if actor is not None:
        require_acts_for(actor, patient, refusal=_("You can write only for yourself and your family."))
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
            thread = Thread.objects.create(**lookup, contact=_live_contact(contact), channel=channel)
            inbox_changed(clinic.pk)
            audit_record(actor=actor, action="thread.opened", clinic=clinic, patient=patient, target=thread)
    except IntegrityError:  # opened at the same moment from another tab
        return Thread.objects.get(**lookup), False
    announce_thread_change(thread)
    return thread, True


def _live_contact(contact: Contact) -> Contact:
    """The card a merged card now lives in (patients.services.contacts_merge)."""
    while contact.merged_into is not None:
        contact = contact.merged_into
    return contact


def thread_access_record(*, thread: Thread, actor: Any, via: str) -> None:
    """A staff member opened the thread: kept for the owner's review."""
    ThreadAccess.objects.create(thread=thread, user=actor, via=via)


# --- staff actions ------------------------------------------------------------------------


def _lock_for_staff(actor: Any, thread: Thread) -> Thread:
    if side_of(actor, thread) != Message.Author.STAFF:
        raise PermissionDenied(_("Only the clinic's staff can do this."))
    locked: Thread = Thread.objects.select_for_update(of=("self",)).select_related("patient", "doctor", "clinic").get(pk=thread.pk)
    return locked


def _record_event(*, thread: Thread, actor: Any, event: str, **data: Any) -> None:
    """A staff-only line in the history ("Olga assigned the thread to Mark").

    The facts go to `data`; each reader sees the line in their own language (payloads.event_text).
    """
    seq = thread.last_seq + 1
    data = {"event": event, "actor": _display_name(actor), **data}
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
    announce_message(message)


def _thread_changed(thread: Thread, *, actor: Any, action: str, data: dict[str, Any] | None = None) -> Thread:
    """After any change of a thread: inbox counts, the audit row (staff actions), the broadcast of its new state."""
    inbox_changed(thread.clinic_id)
    if data is not None:
        audit_record(actor=actor, action=f"thread.{action}", clinic=thread.clinic, patient=thread.patient, target=thread, data=data)
    fresh: Thread = Thread.objects.select_related("patient", "doctor", "clinic", "assigned_to", "team").get(pk=thread.pk)
    announce_thread_change(fresh)
    return fresh


def _display_name(user: Any) -> str:
    return user.display_name if user else ""


def thread_assign(*, actor: Any, thread: Thread, assignee: Any | None) -> Thread:
    """Give the thread to a staff member of its clinic (or take it back to the common queue)."""
    with transaction.atomic():
        locked = _lock_for_staff(actor, thread)
        if assignee is not None:
            role = clinic_roles(assignee).get(locked.clinic_id)
            allowed = role in FRONT_DESK or (role == Role.DOCTOR and locked.doctor is not None and locked.doctor.user_id == assignee.pk)
            if not allowed:
                raise ValidationError({"assignee": _("This person cannot answer this thread.")}, code="assignee")
        if locked.assigned_to_id == getattr(assignee, "pk", None):
            return locked
        locked.assigned_to = assignee
        locked.save(update_fields=["assigned_to"])
        assignee_id = getattr(assignee, "pk", None)
        _record_event(thread=locked, actor=actor, event="assigned", assignee=assignee_id, assignee_name=_display_name(assignee))
        if assignee is not None and assignee.pk != getattr(actor, "pk", None):
            # Someone else gave it to them: they learn by e-mail if they are not looking (notifications dispatch).
            Notification.objects.create(
                clinic_id=locked.clinic_id, recipient=assignee, kind=Notification.Kind.ASSIGNED, thread=locked, reason="assigned"
            )
        return _thread_changed(locked, actor=actor, action="assigned", data={"assignee": assignee_id})


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
        locked = _lock_for_staff(actor, thread)
        if locked.status == status and locked.snoozed_until == snoozed_until:
            return locked
        old = locked.status
        locked.status, locked.snoozed_until = status, snoozed_until
        locked.save(update_fields=["status", "snoozed_until"])
        _record_event(thread=locked, actor=actor, event="status", old=old, new=status)
        return _thread_changed(locked, actor=actor, action="status", data={"old": old, "new": status})


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
            _record_event(thread=locked, actor=None, event="woke")
            _thread_changed(locked, actor=None, action="woke")  # no audit row: nobody acted
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
        locked = _lock_for_staff(actor, thread)
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
            new_team = team if isinstance(team, Team) else None
            if new_team is not None and new_team.clinic_id != locked.clinic_id:
                raise ValidationError({"team": _("A team of another clinic cannot be used here.")}, code="team")
            locked.team = new_team
            data["team"] = getattr(new_team, "pk", None)
        if sensitive is not None:
            locked.sensitive = bool(sensitive)
            if locked.sensitive:
                locked.last_message_preview = ""
            data["sensitive"] = locked.sensitive
        locked.save(update_fields=["priority", "team", "sensitive", "last_message_preview"])
        return _thread_changed(locked, actor=actor, action="updated", data=data)
