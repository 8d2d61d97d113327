"""Portal booking screens: service → day and time → confirm; My visits; the waiting list.

Thin on purpose: reads go through appointments.selectors, each write is one call to
appointments.services, and every refusal of a service is shown as its own message
(the form keeps what the patient chose). Choosing a service and a time is public,
like the slot API: signing in is asked for only at the confirm step, which the
sign-in flow returns to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from appointments import links, selectors, services
from appointments.api import calendar_response
from appointments.models import Visit, room_label
from clinics.models import Clinic, Doctor, Service
from core import client_input
from core.requests import PortalRequest
from patients.selectors import patient_clinics, patient_family, patient_for_user, patient_sees_zones
from patients.services import ConsentRequired
from patients.views import _get_clinic, patient_required

STRIP_DAYS = 14
AT_FORMAT = "%Y-%m-%dT%H:%M"  # a slot in the URL: the clinic's local wall-clock time, readable and unambiguous there
PAST_SHOWN = 20


@dataclass(frozen=True)
class SlotChoice:
    doctor: Doctor
    starts_at: datetime  # local to the clinic
    url: str


# --- small parsers: bad input becomes a message or a 404, never a 500 ------------------------------


def _int(value: str | None) -> int | None:
    return client_input.whole_number(value)


def _service(clinic: Clinic, service_id: int | None) -> Service:
    service = selectors.bookable_services(clinic=clinic).filter(pk=service_id).first() if service_id else None
    if service is None:
        raise Http404(_("This clinic does not offer this service online."))
    return service


def _visit(request: HttpRequest, visit_id: int | None) -> Visit:
    """A visit of the patient's family, or 404 (another patient's visit does not exist for them)."""
    try:
        return selectors.visit_for(user=request.user, visit_id=visit_id or 0)
    except Visit.DoesNotExist:
        raise Http404(_("No such visit.")) from None


def _visit_to_move(request: HttpRequest, clinic: Clinic, service: Service) -> Visit | None:
    move_id = _int(request.GET.get("move") or request.POST.get("move"))
    if move_id is None:
        return None
    visit = _visit(request, move_id)
    if visit.clinic_id != clinic.pk or visit.service_id != service.pk:
        raise Http404(_("No such visit."))
    return visit


def _person(family: list, person_id: int | None):
    """Who the visit is for: the account holder by default, else one of their family (never anyone else)."""
    if person_id is None:
        return family[0]
    person = next((p for p in family if p.pk == person_id), None)
    if person is None:
        raise Http404(_("This person is not in your family."))
    return person


def _confirm_url(
    clinic: Clinic, *, service: Service, doctor_id: int, starts_at: datetime, move: Visit | None, person: int | None = None
) -> str:
    query = {"service": service.pk, "doctor": doctor_id, "at": timezone.localtime(starts_at, clinic.tz).strftime(AT_FORMAT)}
    if move is not None:
        query["move"] = move.pk
    if person:
        query["for"] = person
    return f"{reverse('appointments:book-confirm', args=[clinic.slug])}?{urlencode(query)}"


def _choices(clinic: Clinic, service: Service, slots, doctors: dict[int, Doctor], move: Visit | None, person=None) -> list[SlotChoice]:
    return [
        SlotChoice(
            doctor=doctors[slot.doctor_id],
            starts_at=timezone.localtime(slot.starts_at, clinic.tz),
            url=_confirm_url(clinic, service=service, doctor_id=slot.doctor_id, starts_at=slot.starts_at, move=move, person=person),
        )
        for slot in slots
        if slot.doctor_id in doctors
    ]


# --- booking flow ----------------------------------------------------------------------------------


def book_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Step 1: the clinic's bookable services, grouped by specialty (optionally one doctor's)."""
    clinic = _get_clinic(slug)
    doctors = list(selectors.bookable_doctors(clinic=clinic))
    doctor = next((d for d in doctors if d.pk == _int(request.GET.get("doctor"))), None)
    offered = selectors.bookable_services(clinic=clinic)
    if doctor is not None:
        offered = offered.filter(doctors=doctor)
    return render(
        request, "appointments/book_start.html", {"clinic": clinic, "services": list(offered), "doctors": doctors, "doctor": doctor}
    )


def book_slots(request: HttpRequest, slug: str, service_id: int) -> HttpResponse:
    """Step 2: a strip of 14 days and the chosen day's free times of every doctor of the service.

    Tapping a day swaps only the slots block (htmx); without JavaScript it is a plain link.
    """
    clinic = _get_clinic(slug)
    service = _service(clinic, service_id)
    move = _visit_to_move(request, clinic, service)
    doctors = {d.pk: d for d in selectors.bookable_doctors(clinic=clinic, service=service)}
    doctor_id = _int(request.GET.get("doctor"))
    doctor = doctors.get(doctor_id) if doctor_id is not None else None
    today = timezone.localtime(timezone.now(), clinic.tz).date()
    slots = selectors.free_slots(
        clinic=clinic,
        date_from=today,
        days=STRIP_DAYS,
        service=service,
        doctor_ids=[doctor.pk] if doctor else None,
        exclude_visit=move.pk if move else None,
        patient_id=(move.patient_id if move else patient.pk) if (patient := patient_for_user(request.user)) else None,
    )
    days = selectors.slot_days(clinic=clinic, slots=slots, date_from=today, days=STRIP_DAYS)
    try:
        chosen = client_input.parse_date(request.GET.get("day", ""))
    except ValueError:
        chosen = None
    if chosen not in {d for d, _s in days}:
        chosen = next((d for d, day_slots in days if day_slots), today)
    by_doctor: dict[Doctor, list[SlotChoice]] = {}
    for choice in _choices(clinic, service, dict(days)[chosen], doctors, move):
        by_doctor.setdefault(choice.doctor, []).append(choice)
    query = {"doctor": doctor.pk} if doctor else {}
    if move:
        query["move"] = move.pk
    context = {
        "clinic": clinic,
        "service": service,
        "move": move,
        "doctors": list(doctors.values()),
        "doctor": doctor,
        "days": [(d, len(s), urlencode({**query, "day": d.isoformat()})) for d, s in days],
        "chosen": chosen,
        "by_doctor": list(by_doctor.items()),
        "any_slots": bool(slots),
        "family": patient_family(patient=patient) if patient else [],
        "here": request.get_full_path(),
    }
    template = "appointments/_slots.html" if request.headers.get("HX-Request") else "appointments/book_slots.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])  # one URL, two bodies: caches must not mix them up
    return response


def _parse_slot(request: HttpRequest, clinic: Clinic) -> tuple[Service, Doctor, datetime]:
    data = request.POST if request.method == "POST" else request.GET
    service = _service(clinic, _int(data.get("service")))
    doctor = selectors.bookable_doctors(clinic=clinic, service=service).filter(pk=_int(data.get("doctor")) or 0).first()
    try:
        starts_at = datetime.strptime(data.get("at", ""), AT_FORMAT).replace(tzinfo=clinic.tz)
        client_input.moment_in_bounds(starts_at)
    except ValueError:
        starts_at = None
    if doctor is None or starts_at is None:
        raise Http404(_("This time is not offered: choose it again."))
    return service, doctor, starts_at


@patient_required
def book_confirm(request: PortalRequest, slug: str) -> HttpResponse:
    """Step 3: who the visit is for and what it is; POST books it (or moves the visit being moved)."""
    clinic = _get_clinic(slug)
    service, doctor, starts_at = _parse_slot(request, clinic)
    move = _visit_to_move(request, clinic, service)
    family = patient_family(patient=request.patient)
    person_id = _int(request.POST.get("for") or request.GET.get("for"))
    person = move.patient if move else _person(family, person_id)
    error, consent_url, alternatives, status = "", "", [], 200
    if request.method == "POST":
        try:
            if move is not None:
                visit = services.visit_reschedule(actor=request.user, visit=move, starts_at=starts_at, doctor=doctor, service=service)
            else:
                visit = services.visit_book(
                    actor=request.user, clinic=clinic, doctor=doctor, service=service, patient=person, starts_at=starts_at
                )
        except services.SlotTaken as exc:
            error, status = str(_("This time has just been taken. Choose another one:")), 409
            doctors = {d.pk: d for d in selectors.bookable_doctors(clinic=clinic, service=service)}
            alternatives = _choices(clinic, service, exc.alternatives, doctors, move, person=None if move else person.pk)
        except ConsentRequired as exc:
            error, status = str(exc), 403
            consent_url = f"{reverse('patients:consent', args=[clinic.slug])}?{urlencode({'next': request.get_full_path()})}"
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 400
        except PermissionDenied as exc:
            error, status = str(exc) or _("You cannot book this visit."), 403
        else:
            messages.success(request, _("Visit moved.") if move else _("Visit booked."))
            return redirect("appointments:visit", pk=visit.pk)
    address, room = selectors.slot_place(
        clinic=clinic, doctor=doctor, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=service.duration_minutes)
    )
    return render(
        request,
        "appointments/book_confirm.html",
        {
            "clinic": clinic,
            "service": service,
            "doctor": doctor,
            "starts_at": starts_at,
            "at": starts_at.strftime(AT_FORMAT),
            "address": address,
            "room": room_label(room),
            "move": move,
            "family": family,
            "person": person,
            "error": error,
            "consent_url": consent_url,
            "alternatives": alternatives,
            "back_url": reverse("appointments:book-slots", args=[clinic.slug, service.pk])
            + "?"
            + urlencode({"day": starts_at.date().isoformat(), **({"move": move.pk} if move else {})}),
        },
        status=status,
    )


# --- My visits ---------------------------------------------------------------------------------------


@patient_required
def my_visits(request: PortalRequest) -> HttpResponse:
    """Upcoming and past visits of the whole family in every clinic, and the waiting lists joined."""
    return render(
        request,
        "appointments/my_visits.html",
        {
            "patient": request.patient,
            "upcoming": list(selectors.patient_visits(user=request.user, upcoming=True)),
            "past": list(selectors.patient_visits(user=request.user, upcoming=False)[:PAST_SHOWN]),
            "waitlist": list(selectors.waitlist_for(user=request.user)),
            "clinics": list({c.clinic_id: c.clinic for c in patient_clinics(patient=request.patient)}.values()),
            "show_zones": patient_sees_zones(patient=request.patient),
        },
    )


@patient_required
def visit_detail(request: PortalRequest, pk: int) -> HttpResponse:
    visit = _visit(request, pk)
    return render(
        request,
        "appointments/visit.html",
        {"visit": visit, "terms": selectors.visit_cancel_terms(visit=visit), "patient": request.patient},
    )


@patient_required
def visit_calendar(request: HttpRequest, pk: int) -> HttpResponse:
    return calendar_response(_visit(request, pk))


@patient_required
def visit_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """A confirm step first: it says whether cancelling now counts as late under the clinic's rules."""
    visit = _visit(request, pk)
    if request.method == "POST":
        try:
            services.visit_cancel(actor=request.user, visit=visit, reason=request.POST.get("reason", ""))
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            return redirect("appointments:visit", pk=visit.pk)
        messages.success(request, _("Visit cancelled."))
        return redirect("appointments:my-visits")
    return render(request, "appointments/visit_cancel.html", {"visit": visit, "terms": selectors.visit_cancel_terms(visit=visit)})


@require_POST
@patient_required
def visit_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    visit = _visit(request, pk)
    try:
        services.visit_confirm(actor=request.user, visit=visit)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, _("Thank you: the clinic knows you will come."))
    return redirect("appointments:my-visits" if request.POST.get("back") == "list" else reverse("appointments:visit", args=[visit.pk]))


# --- waiting list --------------------------------------------------------------------------------------


@require_POST
@patient_required
def waitlist_join(request: PortalRequest, slug: str, service_id: int) -> HttpResponse:
    """ "Tell me if an earlier time frees up" with one doctor: freed slots come to the chat as buttons."""
    clinic = _get_clinic(slug)
    service = _service(clinic, service_id)
    back = reverse("appointments:book-slots", args=[clinic.slug, service.pk])
    doctor = selectors.bookable_doctors(clinic=clinic, service=service).filter(pk=_int(request.POST.get("doctor")) or 0).first()
    person = _person(patient_family(patient=request.patient), _int(request.POST.get("for")))
    if doctor is None:
        messages.error(request, _("Choose a doctor."))
        return redirect(back)
    try:
        services.waitlist_join(actor=request.user, patient=person, doctor=doctor, service=service)
    except ConsentRequired as exc:
        messages.warning(request, str(exc))
        return redirect(f"{reverse('patients:consent', args=[clinic.slug])}?{urlencode({'next': back})}")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(back)
    messages.success(
        request,
        _("Done: if an earlier time with %(doctor)s frees up, we will offer it in your chat with the clinic.")
        % {"doctor": doctor.full_name},
    )
    return redirect("appointments:my-visits")


@require_POST
@patient_required
def waitlist_leave(request: HttpRequest, pk: int) -> HttpResponse:
    entry = selectors.waitlist_for(user=request.user).filter(pk=pk).first()
    if entry is None:
        raise Http404(_("No such entry."))
    try:
        services.waitlist_leave(actor=request.user, entry=entry)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("You left the waiting list."))
    return redirect("appointments:my-visits")


# --- the confirm / cancel link of a reminder (no sign-in: the signed link is the key) -------------------


def visit_link(request: HttpRequest, token: str) -> HttpResponse:
    """From the 24-hour reminder: confirm or cancel with one tap, acting as the patient who got the SMS."""
    visit = links.visit_from_link(token=token)
    if visit is None:
        raise Http404(_("This link is no longer valid."))
    actor = (visit.patient.guardian or visit.patient).user
    if request.method == "POST" and visit.is_upcoming:
        try:
            if request.POST.get("action") == "cancel":
                services.visit_cancel(actor=actor, visit=visit, reason=_("Cancelled from the reminder"))
                messages.success(request, _("Visit cancelled."))
            else:
                services.visit_confirm(actor=actor, visit=visit)
                messages.success(request, _("Thank you: the clinic knows you will come."))
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("appointments:visit-link", token=token)
    return render(request, "appointments/visit_link.html", {"visit": visit, "token": token})
