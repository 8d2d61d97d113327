"""Writes for visits: book, move, cancel, confirm, attendance, waiting list, freed-slot offers.

No double booking is the database's job: on PostgreSQL the exclusion constraint
`visit_no_double_booking` rejects an overlapping visit of the same doctor; on
SQLite (the embedded default) every write transaction starts IMMEDIATE, so the
check-then-insert below runs one booking at a time. Either way the loser gets
SlotTaken with the nearest free times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from appointments import selectors
from appointments.models import SlotOffer, Visit, WaitlistEntry
from appointments.reminders import visit_notifications_cancel
from audit.services import audit_record
from clinics.models import Clinic, Doctor, Service
from clinics.tenancy import FRONT_DESK, portal_holder_id, require_acts_for, require_role
from clinics.zones import zone_label
from messaging.models import Message, Thread
from messaging.services import send_message, thread_open
from patients.models import Contact, Patient
from patients.selectors import consent_is_given, patient_sees_zones
from patients.services import consent_require

OFFER_RECIPIENTS = 5


class SlotTaken(Exception):
    """The time was taken a moment ago (or is held by another visit); `alternatives` are the nearest free slots."""

    code = "slot_taken"

    def __init__(self, alternatives: list[selectors.Slot] | None = None, *, clinic: Clinic | None = None) -> None:
        self.alternatives = alternatives or []
        self.clinic = clinic
        times = ", ".join(visit_time_text(clinic, slot.starts_at) for slot in self.alternatives) if clinic else ""
        message = _("This time has just been taken.")
        message += " " + (_("Nearest free times: %(times)s.") % {"times": times} if times else _("Choose another day."))
        super().__init__(message)


def visit_time_text(clinic: Clinic, moment: datetime, *, with_zone: bool = False) -> str:
    """A time as the clinic's patients read it: '14 December 2026, 10:00' in the clinic's zone,
    with the zone named («…, 11:00 (Екатеринбург, UTC+5)») for a person who deals with several zones."""
    text = formats.date_format(timezone.localtime(moment, clinic.tz), "j E Y, H:i")
    return f"{text} ({zone_label(time_zone=clinic.time_zone, moment=moment)})" if with_zone else text


def patient_visit_time_text(visit: Visit) -> str:
    """The visit's time as its patient reads it (clinics.zones: the zone shown when their clinics differ in zone)."""
    return visit_time_text(visit.clinic, visit.starts_at, with_zone=patient_sees_zones(patient=visit.patient))


def _is_double_booking(error: IntegrityError) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == "23P01" or "visit_no_double_booking" in str(error)


# --- who is acting -----------------------------------------------------------------------------


def _is_portal_user(actor: Any) -> bool:
    """The actor is a patient (an account holder of the portal), not clinic staff: the clinic's booking rules apply."""
    return portal_holder_id(actor) is not None


def _acts_as_patient(actor: Any, patient: Patient) -> bool:
    """True when a portal user acts for themselves or a dependant; False for clinic staff; else refused."""
    if not _is_portal_user(actor):
        return False
    require_acts_for(actor, patient, refusal=_("You can book only for yourself and your family."))
    return True


def _require_front_desk_of_contact(actor: Any, clinic: Clinic, patient: Patient) -> None:
    """Staff book for the clinic's own contacts, from the front desk."""
    require_role(actor, clinic.pk, FRONT_DESK, refusal=_("Your role in this clinic does not allow this."))
    if not Contact.objects.filter(clinic=clinic, patient=patient).exists():
        raise ValidationError({"patient": _("This person is not a contact of your clinic yet.")}, code="not_contact")


def _visit_for_change(actor: Any, visit: Visit) -> tuple[Visit, bool]:
    """The visit locked for update if the actor may change it, and whether the actor is the patient."""
    by_patient = _is_portal_user(actor)
    visits = Visit.objects.visible_to(actor) if by_patient else Visit.objects.editable_by(actor)
    locked = visits.select_for_update(of=("self",)).select_related("clinic", "doctor", "service", "patient").filter(pk=visit.pk).first()
    if locked is None:
        raise PermissionDenied(_("This visit is not yours to change."))
    return locked, by_patient


# --- checks ------------------------------------------------------------------------------------


def _check_slot(
    *,
    clinic: Clinic,
    doctor: Doctor,
    service: Service,
    starts_at: datetime,
    by_patient: bool,
    now: datetime,
) -> tuple[datetime, Any]:
    """Everything about the requested time that does not depend on other visits. Returns (ends_at, working interval)."""
    if doctor.clinic_id != clinic.pk or not doctor.is_active:
        raise ValidationError({"doctor": _("This doctor does not see patients in this clinic.")}, code="doctor")
    if service.clinic_id != clinic.pk or not service.is_active:
        raise ValidationError({"service": _("This clinic does not offer this service.")}, code="service")
    if not doctor.services.filter(pk=service.pk).exists():
        raise ValidationError(
            {"service": _("%(doctor)s does not provide «%(service)s».") % {"doctor": doctor.full_name, "service": service.name}},
            code="service",
        )
    if timezone.is_naive(starts_at):
        raise ValidationError({"starts_at": _("Give the time with its time zone.")}, code="naive")
    if starts_at <= now:
        raise ValidationError({"starts_at": _("This time has already passed.")}, code="past")
    rules = selectors.booking_rules_for(clinic)
    if by_patient:
        if starts_at < now + timedelta(minutes=rules.min_notice_minutes):
            hours = rules.min_notice_minutes / 60
            raise ValidationError(
                {"starts_at": _("Online booking closes %(hours)s h before the visit: choose a later time or call the clinic.")
                 % {"hours": f"{hours:g}"}},
                code="too_soon",
            )  # fmt: skip
        if starts_at > now + timedelta(days=rules.horizon_days):
            raise ValidationError(
                {"starts_at": _("Visits can be booked at most %(days)s days ahead.") % {"days": rules.horizon_days}}, code="too_far"
            )
    elif starts_at > now + timedelta(days=settings.PLANNING_HORIZON_DAYS):
        raise ValidationError(
            {"starts_at": _("Visits can be booked at most %(days)s days ahead.") % {"days": settings.PLANNING_HORIZON_DAYS}},
            code="too_far",
        )
    ends_at = starts_at + timedelta(minutes=service.duration_minutes)
    interval = selectors.working_interval(clinic=clinic, doctor=doctor, starts_at=starts_at, ends_at=ends_at)
    if interval is None:
        raise ValidationError({"starts_at": _("The doctor does not see patients at this time.")}, code="off_hours")
    return ends_at, interval


def _create_visit(
    *,
    clinic: Clinic,
    doctor: Doctor,
    service: Service,
    patient: Patient,
    starts_at: datetime,
    ends_at: datetime,
    interval: Any,
    source: str,
    actor: Any,
    by_patient: bool,
    thread: Thread | None,
    rescheduled_from: Visit | None = None,
) -> Visit:
    """Create the visit inside the caller's transaction. SlotTaken if another visit holds the time."""
    rules = selectors.booking_rules_for(clinic)
    if (
        by_patient
        and rescheduled_from is None
        and selectors.upcoming_count(patient_id=patient.pk, clinic_id=clinic.pk) >= rules.max_upcoming_visits
    ):
        raise ValidationError(
            {"patient": _("You already have %(limit)s upcoming visits in this clinic: cancel one or call the clinic to book more.")
             % {"limit": rules.max_upcoming_visits}},
            code="too_many",
        )  # fmt: skip
    overlapping = Visit.objects.filter(status__in=Visit.HOLDING, starts_at__lt=ends_at, ends_at__gt=starts_at)
    if overlapping.filter(doctor=doctor).exists():
        raise SlotTaken()
    clash = overlapping.filter(patient=patient).select_related("clinic").order_by("starts_at").first()
    if clash is not None:
        raise _patient_busy_refusal(clash=clash, patient=patient, by_patient=by_patient, actor=actor)
    with transaction.atomic():  # a savepoint: the constraint's refusal must not poison the caller's transaction
        visit = Visit.objects.create(
            clinic=clinic,
            doctor=doctor,
            service=service,
            patient=patient,
            branch_id=interval.branch_id,
            room=interval.room,
            starts_at=starts_at,
            ends_at=ends_at,
            source=source,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            thread=thread,
            rescheduled_from=rescheduled_from,
        )
    WaitlistEntry.objects.filter(doctor=doctor, patient=patient, is_active=True).update(is_active=False)
    return visit


def _patient_busy_refusal(*, clash: Visit, patient: Patient, by_patient: bool, actor: Any) -> ValidationError:
    """The person already holds a visit then. The patient is told which (it is theirs, in whichever clinic);
    staff learn only that the person is busy: another clinic's visit is not theirs to see."""
    if not by_patient:
        return ValidationError({"starts_at": _("This person already has a visit at this time.")}, code="patient_busy")
    facts = {"when": patient_visit_time_text(clash), "clinic": clash.clinic.name, "name": patient.full_name}
    if patient.pk == portal_holder_id(actor):
        message = _("You already have a visit at this time: %(when)s, %(clinic)s. Choose another time.") % facts
    else:
        message = _("%(name)s already has a visit at this time: %(when)s, %(clinic)s. Choose another time.") % facts
    return ValidationError({"starts_at": message}, code="patient_busy")


def _refusal_with_alternatives(
    *, clinic: Clinic, doctor: Doctor, service: Service, starts_at: datetime, by_patient: bool, patient: Patient | None = None
) -> SlotTaken:
    alternatives = selectors.nearest_free_slots(
        clinic=clinic, doctor=doctor, service=service, around=starts_at, for_patient=by_patient, patient_id=patient.pk if patient else None
    )
    return SlotTaken(alternatives, clinic=clinic)


# --- booking -----------------------------------------------------------------------------------


def visit_book(
    *,
    actor: Any,
    clinic: Clinic,
    doctor: Doctor,
    service: Service,
    patient: Patient,
    starts_at: datetime,
    source: str | None = None,
    thread: Thread | None = None,
    offer: SlotOffer | None = None,
) -> Visit:
    """Book a visit, from the portal (the patient), a thread or an offer (the patient), or the front desk (staff).

    Patients are held to the clinic's rules (notice, horizon, upcoming visits);
    staff may book any free future time inside working hours.
    """
    by_patient = _acts_as_patient(actor, patient)
    if not by_patient:
        _require_front_desk_of_contact(actor, clinic, patient)
    if thread is not None and (thread.clinic_id != clinic.pk or thread.patient_id != patient.pk):
        raise ValidationError({"thread": _("This conversation is about another person or clinic.")}, code="thread")
    if source is None:
        source = (Visit.Source.THREAD if thread or offer else Visit.Source.PORTAL) if by_patient else Visit.Source.OPERATOR
    now = timezone.now()
    ends_at, interval = _check_slot(clinic=clinic, doctor=doctor, service=service, starts_at=starts_at, by_patient=by_patient, now=now)
    consent_require(patient=patient, clinic=clinic)
    try:
        with transaction.atomic():
            if offer is not None:
                _take_offer(offer=offer, patient=patient, doctor=doctor, starts_at=starts_at)
            visit = _create_visit(
                clinic=clinic, doctor=doctor, service=service, patient=patient, starts_at=starts_at, ends_at=ends_at,
                interval=interval, source=source, actor=actor, by_patient=by_patient, thread=thread,
            )  # fmt: skip
            if offer is not None:
                SlotOffer.objects.filter(pk=offer.pk).update(status=SlotOffer.Status.TAKEN, visit=visit)
            audit_record(actor=actor, action="visit.booked", clinic=clinic, patient=patient, target=visit, data={"source": source})
            _tell_thread(visit=visit, text=_("Visit booked: %(visit)s.") % {"visit": _visit_line(visit)}, event="booked")
    except IntegrityError as error:
        if not _is_double_booking(error):
            raise
        raise _refusal_with_alternatives(
            clinic=clinic, doctor=doctor, service=service, starts_at=starts_at, by_patient=by_patient, patient=patient
        ) from None
    except SlotTaken:
        raise _refusal_with_alternatives(
            clinic=clinic, doctor=doctor, service=service, starts_at=starts_at, by_patient=by_patient, patient=patient
        ) from None
    return visit


def _take_offer(*, offer: SlotOffer, patient: Patient, doctor: Doctor, starts_at: datetime) -> None:
    locked = SlotOffer.objects.select_for_update().get(pk=offer.pk)
    if not locked.offered_to.filter(pk=patient.pk).exists():
        raise PermissionDenied(_("This offer was made to someone else."))
    if locked.doctor_id != doctor.pk or locked.starts_at != starts_at:
        raise ValidationError({"starts_at": _("This is not the time that was offered.")}, code="offer")
    if locked.status != SlotOffer.Status.OPEN:
        raise SlotTaken()


def visit_reschedule(
    *, actor: Any, visit: Visit, starts_at: datetime, doctor: Doctor | None = None, service: Service | None = None
) -> Visit:
    """Move a visit: the old one is cancelled and the new one created in one transaction (never two, never none)."""
    now = timezone.now()
    doctor = doctor or visit.doctor
    service = service or visit.service
    try:
        return _reschedule(actor=actor, visit=visit, starts_at=starts_at, doctor=doctor, service=service, now=now)
    except SlotTaken:
        by_patient = _is_portal_user(actor)
        raise _refusal_with_alternatives(
            clinic=visit.clinic, doctor=doctor, service=service, starts_at=starts_at, by_patient=by_patient, patient=visit.patient
        ) from None


def _reschedule(*, actor: Any, visit: Visit, starts_at: datetime, doctor: Doctor, service: Service, now: datetime) -> Visit:
    with transaction.atomic():
        old, by_patient = _visit_for_change(actor, visit)
        if old.status not in Visit.UPCOMING or old.starts_at <= now:
            raise ValidationError({"visit": _("Only a future visit can be moved.")}, code="not_upcoming")
        rules = selectors.booking_rules_for(old.clinic)
        if by_patient and old.starts_at - now < timedelta(hours=rules.late_cancel_hours):
            raise ValidationError(
                {"visit": _("This visit is less than %(hours)s h away and can no longer be moved online: please call the clinic.")
                 % {"hours": rules.late_cancel_hours}},
                code="too_late",
            )  # fmt: skip
        ends_at, interval = _check_slot(
            clinic=old.clinic, doctor=doctor, service=service, starts_at=starts_at, by_patient=by_patient, now=now
        )
        _mark_cancelled(
            old,
            actor=actor,
            by_patient=by_patient,
            now=now,
            reason=_("Moved to %(when)s") % {"when": visit_time_text(old.clinic, starts_at)},
        )
        try:
            visit_new = _create_visit(
                clinic=old.clinic, doctor=doctor, service=service, patient=old.patient, starts_at=starts_at, ends_at=ends_at,
                interval=interval, source=old.source, actor=actor, by_patient=by_patient, thread=old.thread, rescheduled_from=old,
            )  # fmt: skip
        except IntegrityError as error:
            if not _is_double_booking(error):
                raise
            raise SlotTaken() from None
        audit_record(actor=actor, action="visit.moved", clinic=old.clinic, patient=old.patient, target=visit_new, data={"from": old.pk})
        _tell_thread(
            visit=visit_new,
            text=_("Visit moved from %(old)s to %(visit)s.")
            % {"old": visit_time_text(old.clinic, old.starts_at), "visit": _visit_line(visit_new)},
            event="moved",
        )
    return visit_new


def _mark_cancelled(visit: Visit, *, actor: Any, by_patient: bool, now: datetime, reason: str, late: bool = False) -> None:
    """The one way a visit becomes cancelled (a cancellation, or the old half of a move); its waiting reminders go too."""
    visit.status = Visit.Status.CANCELLED
    visit.cancelled_at = now
    visit.cancelled_by = Visit.CancelledBy.PATIENT if by_patient else Visit.CancelledBy.CLINIC
    visit.cancelled_by_user = actor
    visit.cancel_reason = reason
    visit.cancelled_late = late
    visit.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancelled_by_user", "cancel_reason", "cancelled_late"])
    visit_notifications_cancel(visit_id=visit.pk)


def visit_cancel(*, actor: Any, visit: Visit, reason: str = "") -> Visit:
    """Cancel a future visit. Inside the late-cancel window it counts as late; the freed slot goes to the waiting list."""
    now = timezone.now()
    with transaction.atomic():
        visit, by_patient = _visit_for_change(actor, visit)
        if visit.status not in Visit.UPCOMING:
            raise ValidationError(
                {"visit": _("This visit is already %(status)s.") % {"status": visit.get_status_display().lower()}}, code="status"
            )
        if by_patient and visit.starts_at <= now:
            raise ValidationError({"visit": _("This visit has already started: please call the clinic.")}, code="started")
        rules = selectors.booking_rules_for(visit.clinic)
        late = visit.starts_at - now < timedelta(hours=rules.late_cancel_hours)
        _mark_cancelled(visit, actor=actor, by_patient=by_patient, now=now, reason=reason.strip()[:300], late=late)
        audit_record(
            actor=actor,
            action="visit.cancelled",
            clinic=visit.clinic,
            patient=visit.patient,
            target=visit,
            data={"late": visit.cancelled_late},
        )
        _tell_thread(visit=visit, text=_("Visit cancelled: %(visit)s.") % {"visit": _visit_line(visit)}, event="cancelled")
        if visit.starts_at > now + timedelta(minutes=rules.min_notice_minutes):
            from appointments.tasks import offer_freed_slot  # tasks imports this module: a task only calls a service

            visit_id = visit.pk
            transaction.on_commit(lambda: offer_freed_slot.delay(visit_id))
    return visit


def visit_confirm(*, actor: Any, visit: Visit) -> Visit:
    """The patient (or the front desk on their word) confirms they will come."""
    with transaction.atomic():
        visit, _by_patient = _visit_for_change(actor, visit)
        if visit.status != Visit.Status.BOOKED or visit.starts_at <= timezone.now():
            raise ValidationError({"visit": _("Only a booked future visit can be confirmed.")}, code="status")
        visit.status = Visit.Status.CONFIRMED
        visit.confirmed_at = timezone.now()
        visit.save(update_fields=["status", "confirmed_at"])
        audit_record(actor=actor, action="visit.confirmed", clinic=visit.clinic, patient=visit.patient, target=visit)
    return visit


def visit_mark(*, actor: Any, visit: Visit, status: str) -> Visit:
    """Staff record the outcome once the visit has started: came (completed) or no-show. Corrections allowed."""
    if status not in (Visit.Status.COMPLETED, Visit.Status.NO_SHOW):
        raise ValidationError({"status": _("Mark a visit as completed or as a no-show.")}, code="status")
    with transaction.atomic():
        visit, by_patient = _visit_for_change(actor, visit)
        if by_patient:
            raise PermissionDenied(_("Only the clinic records attendance."))
        if visit.status == Visit.Status.CANCELLED:
            raise ValidationError({"visit": _("This visit was cancelled.")}, code="status")
        if visit.starts_at > timezone.now():
            raise ValidationError({"visit": _("The visit has not started yet.")}, code="not_started")
        visit.status = status
        visit.save(update_fields=["status"])
        audit_record(actor=actor, action=f"visit.{status}", clinic=visit.clinic, patient=visit.patient, target=visit)
    return visit


# --- the conversation side ---------------------------------------------------------------------


def _visit_line(visit: Visit) -> str:
    parts = [patient_visit_time_text(visit), visit.doctor.full_name, visit.service.name]
    if visit.branch is not None and visit.branch.address:
        parts.append(visit.branch.address)
    if visit.room:
        parts.append(visit.room_label)
    return ", ".join(parts)


def _tell_thread(*, visit: Visit, text: str, event: str) -> None:
    """The visit shows in the patient's conversation with the clinic, as a message from the clinic."""
    if not consent_is_given(patient=visit.patient, clinic=visit.clinic):
        return  # consent withdrawn: the clinic no longer writes to this person (152-FZ)
    thread = visit.thread
    if thread is None:
        thread, _created = thread_open(patient=visit.patient, clinic=visit.clinic, actor=None)
    send_message(
        thread=thread,
        actor=None,
        author=Message.Author.SYSTEM,
        text=text,
        # The patient too: the inbox refreshes the card of any conversation with them open beside it.
        data={"visit": visit.pk, "visit_event": event, "patient": visit.patient_id},
    )


def _slot_data(*, clinic: Clinic, doctor: Doctor, service: Service, starts_at: datetime) -> dict[str, Any]:
    """A bookable time as a chat button carries it: what POST /api/visits/ needs, and its label."""
    return {
        "doctor": doctor.pk,
        "doctor_name": doctor.full_name,
        "service": service.pk,
        "service_name": service.name,
        "starts_at": timezone.localtime(starts_at, clinic.tz).isoformat(),
        "label": visit_time_text(clinic, starts_at),
    }


def slots_propose(*, actor: Any, thread: Thread, slots: list[tuple[Doctor, Service, datetime]], text: str = "") -> Message:
    """An operator offers times in the chat as buttons; the patient books one with a tap (visit_book with the thread)."""
    if not 1 <= len(slots) <= 6:
        raise ValidationError({"slots": _("Offer from one to six times.")}, code="slots")
    clinic = thread.clinic
    offered = []
    for doctor, service, starts_at in slots:
        _check_slot(clinic=clinic, doctor=doctor, service=service, starts_at=starts_at, by_patient=False, now=timezone.now())
        ends_at = starts_at + timedelta(minutes=service.duration_minutes)
        held = Visit.objects.filter(status__in=Visit.HOLDING, starts_at__lt=ends_at, ends_at__gt=starts_at)
        if held.filter(doctor=doctor).exists():
            raise ValidationError(
                {"slots": _("%(when)s is already taken.") % {"when": visit_time_text(clinic, starts_at)}}, code="slot_taken"
            )
        if held.filter(patient_id=thread.patient_id).exists():  # the patient could not take it; where they are then is not said
            raise ValidationError(
                {
                    "slots": _("The patient already has a visit at %(when)s: offer another time.")
                    % {"when": visit_time_text(clinic, starts_at)}
                },
                code="patient_busy",
            )
        offered.append(_slot_data(clinic=clinic, doctor=doctor, service=service, starts_at=starts_at))
    lines = [f"• {slot['label']} — {slot['doctor_name']}, {slot['service_name']}" for slot in offered]
    body = (text.strip() or _("Free times for you: tap one to book.")) + "\n" + "\n".join(lines)
    message, _created = send_message(thread=thread, actor=actor, text=body, data={"slots": offered})
    return message


# --- waiting list and freed slots ----------------------------------------------------------------


def waitlist_join(*, actor: Any, patient: Patient, doctor: Doctor, service: Service) -> WaitlistEntry:
    """Ask to be offered an earlier time with this doctor when one frees up."""
    by_patient = _acts_as_patient(actor, patient)
    if not by_patient:
        _require_front_desk_of_contact(actor, doctor.clinic, patient)
    if service.clinic_id != doctor.clinic_id or not doctor.services.filter(pk=service.pk).exists():
        raise ValidationError(
            {"service": _("%(doctor)s does not provide «%(service)s».") % {"doctor": doctor.full_name, "service": service.name}}
        )
    consent_require(patient=patient, clinic=doctor.clinic)
    with transaction.atomic():
        entry = WaitlistEntry.objects.filter(doctor=doctor, patient=patient, is_active=True).first()
        if entry is None:
            entry = WaitlistEntry.objects.create(clinic=doctor.clinic, doctor=doctor, patient=patient, service=service)
            audit_record(actor=actor, action="waitlist.joined", clinic=doctor.clinic, patient=patient, target=entry)
    return entry


def waitlist_leave(*, actor: Any, entry: WaitlistEntry) -> None:
    by_patient = _acts_as_patient(actor, entry.patient)
    if not by_patient and not WaitlistEntry.objects.editable_by(actor).filter(pk=entry.pk).exists():
        raise PermissionDenied(_("Your role in this clinic does not allow this."))
    WaitlistEntry.objects.filter(pk=entry.pk).update(is_active=False)


def slot_offer_create(*, visit_id: int) -> SlotOffer | None:
    """Offer the time of a cancelled visit to the first patients on the doctor's waiting list, in their threads.

    Nothing is offered when the time is no longer free (already re-booked) or too close.
    """
    visit = Visit.objects.select_related("clinic", "doctor", "service").get(pk=visit_id)
    clinic = visit.clinic
    rules = selectors.booking_rules_for(clinic)
    if visit.status != Visit.Status.CANCELLED or visit.starts_at <= timezone.now() + timedelta(minutes=rules.min_notice_minutes):
        return None
    taken = Visit.objects.filter(doctor=visit.doctor, status__in=Visit.HOLDING, starts_at__lt=visit.ends_at, ends_at__gt=visit.starts_at)
    if taken.exists():
        return None
    entries = [
        e
        for e in WaitlistEntry.objects.filter(doctor=visit.doctor, is_active=True)
        .exclude(patient=visit.patient)
        .select_related("patient", "service")
        if consent_is_given(patient=e.patient, clinic=clinic)
    ][:OFFER_RECIPIENTS]
    if not entries:
        return None
    slot = _slot_data(clinic=clinic, doctor=visit.doctor, service=visit.service, starts_at=visit.starts_at)
    with transaction.atomic():
        offer = SlotOffer.objects.create(
            clinic=clinic, doctor=visit.doctor, service=visit.service, starts_at=visit.starts_at, ends_at=visit.ends_at, freed_by=visit
        )
        offer.offered_to.set([e.patient for e in entries])
        text = _("An earlier time is free with %(doctor)s: %(when)s. The first to book it gets it.") % {
            "doctor": visit.doctor.full_name,
            "when": slot["label"],
        }
        for entry in entries:
            thread, _created = thread_open(patient=entry.patient, clinic=clinic, actor=None)
            send_message(thread=thread, actor=None, author=Message.Author.SYSTEM, text=text, data={"slots": [slot], "offer": offer.pk})
    return offer
