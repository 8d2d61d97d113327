"""The booking calendar inside the admin (/admin/calendar/): day and week grids, visit actions, attendance.

Views are thin: reads through appointments.selectors, every change one call to
appointments.services; a service's refusal (SlotTaken with its nearest free times,
off hours, a past time…) comes back as an admin message, never a 500. Times are
shown and typed in the clinic's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from appointments import selectors, services
from appointments.models import Visit
from clinics.models import Clinic, Doctor, Service
from clinics.tenancy import FRONT_DESK, has_role, is_staff_member
from core import client_input
from core.errors import refusal_text
from messaging import selectors as messaging_selectors
from messaging.models import Thread
from patients.models import Patient

PX_PER_MINUTE = 1.4
DEFAULT_HOURS = (9, 18)
OFFER_MAX = 6
OFFER_SHOWN = 36
REFUSALS = (ValidationError, PermissionDenied, services.SlotTaken)
Choice = TypeVar("Choice")


# --- request parsing ----------------------------------------------------------------------------


def _param(request: HttpRequest, name: str) -> str:
    return (request.POST.get(name) if request.method == "POST" else None) or request.GET.get(name, "")


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = _param(request, name).strip()
    return client_input.whole_number(value)


def _date_param(request: HttpRequest, name: str, default: date) -> date:
    """A YYYY-MM-DD parameter; anything else is the default, with a message when something was typed."""
    value = _param(request, name).strip()
    if not value:
        return default
    try:
        return client_input.parse_date(value)
    except client_input.ClientInputError as exc:
        messages.error(request, exc.message)
        return default
    except ValueError:
        messages.error(request, _("“%(value)s” is not a date: give it as YYYY-MM-DD.") % {"value": value[:20]})
        return default


def _clinic(request: HttpRequest) -> Clinic:
    """The clinic of the page: ?clinic= among the user's clinics, else the first of them."""
    clinics = list(selectors.calendar_clinics(user=request.user))
    if not clinics:
        raise PermissionDenied(_("The calendar is for the clinic's staff."))
    wanted = _int_param(request, "clinic")
    return next((c for c in clinics if c.pk == wanted), clinics[0])


def _chosen(choices: dict[int, Choice], value: str) -> Choice | None:
    """The choice a posted id names, or None (not a number, or not among the choices offered)."""
    pk = client_input.whole_number(value)
    return choices.get(pk) if pk is not None else None


def _today(clinic: Clinic) -> date:
    return timezone.localtime(timezone.now(), clinic.tz).date()


def _url(name: str, *args: Any, **query: Any) -> str:
    pairs = {k: v for k, v in query.items() if v not in (None, "")}
    return reverse(f"calendar:{name}", args=args) + (f"?{urlencode(pairs)}" if pairs else "")


def _local_time(clinic: Clinic, moment: datetime) -> datetime:
    return timezone.localtime(moment, clinic.tz)


def _refuse(request: HttpRequest, exc: ValidationError | PermissionDenied | services.SlotTaken) -> None:
    messages.error(request, str(exc) if isinstance(exc, services.SlotTaken) else refusal_text(exc))


# --- the grid -------------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # "visit" | "free" | "work"
    start: float  # minutes from the column's local midnight
    end: float
    label: str = ""
    sub: str = ""
    url: str = ""
    status: str = ""
    lane: int = 0
    lanes: int = 1
    top: float = 0
    height: float = 0
    left: float = 0
    width: float = 100


@dataclass
class Column:
    title: str
    subtitle: str
    day: date
    doctor: Doctor
    url: str = ""
    blocks: list[Block] = field(default_factory=list)
    background: list[Block] = field(default_factory=list)
    off: bool = False


def _minutes(clinic: Clinic, day: date, moment: datetime) -> float:
    midnight = datetime.combine(day, time.min, tzinfo=clinic.tz)
    return (moment - midnight).total_seconds() / 60


def _lay_out(blocks: list[Block]) -> None:
    """Overlapping blocks (a cancelled visit and the one booked in its place) share the width side by side."""
    blocks.sort(key=lambda b: (b.start, b.end))
    cluster: list[Block] = []
    lane_ends: list[float] = []
    cluster_end = float("-inf")

    def close() -> None:
        for b in cluster:
            b.lanes = len(lane_ends)

    for block in blocks:
        if cluster and block.start >= cluster_end:
            close()
            cluster, lane_ends = [], []
        for index, end in enumerate(lane_ends):
            if end <= block.start:
                lane_ends[index], block.lane = block.end, index
                break
        else:
            lane_ends.append(block.end)
            block.lane = len(lane_ends) - 1
        cluster.append(block)
        cluster_end = max(cluster_end, block.end)
    close()


def _grid(request: HttpRequest, clinic: Clinic, columns: list[Column], first: date, days: int) -> dict[str, Any]:
    """Visits, free slots and working hours of the columns, positioned in pixels from the first hour shown."""
    doctor_ids = sorted({c.doctor.pk for c in columns})
    visits = selectors.visits_between(user=request.user, clinic=clinic, first=first, days=days, doctor_ids=doctor_ids)
    slots = selectors.free_slots(clinic=clinic, date_from=first, days=days, doctor_ids=doctor_ids, for_patient=False)
    hours = selectors.working_hours(clinic=clinic, doctor_ids=doctor_ids, first=first, days=days)
    by_key = {(c.doctor.pk, c.day): c for c in columns}
    _place_working_hours(clinic, by_key, hours)
    _place_visits(clinic, by_key, visits)
    _place_free_slots(clinic, by_key, slots, bookable=has_role(request.user, clinic.pk, FRONT_DESK))
    first_hour, last_hour = _hours_shown(columns)
    offset = first_hour * 60
    for column in columns:
        _lay_out(column.blocks)
        for block in column.blocks + column.background:
            _position(block, offset=offset)
    return {
        "columns": columns,
        "hours": [{"label": f"{h:02d}:00", "top": round((h * 60 - offset) * PX_PER_MINUTE, 1)} for h in range(first_hour, last_hour)],
        "grid_height": round((last_hour - first_hour) * 60 * PX_PER_MINUTE, 1),
        "statuses": Visit.Status.choices,
    }


ColumnKey = tuple[int, date]  # (doctor, local day)


def _place_working_hours(clinic: Clinic, by_key: dict[ColumnKey, Column], hours: dict[ColumnKey, list[tuple[datetime, datetime]]]) -> None:
    """Working intervals as the columns' background; a column without any is a day off."""
    for (doctor_id, day), intervals in hours.items():
        column = by_key.get((doctor_id, day))
        if column is not None:
            column.background = [Block("work", _minutes(clinic, day, s), _minutes(clinic, day, e)) for s, e in intervals]
            column.off = not intervals


def _place_visits(clinic: Clinic, by_key: dict[ColumnKey, Column], visits: list[Visit]) -> None:
    for visit in visits:
        local = _local_time(clinic, visit.starts_at)
        column = by_key.get((visit.doctor_id, local.date()))
        if column is None:
            continue
        column.blocks.append(
            Block(
                "visit",
                _minutes(clinic, column.day, visit.starts_at),
                _minutes(clinic, column.day, visit.ends_at),
                label=visit.patient.full_name,
                sub=f"{local:%H:%M}–{_local_time(clinic, visit.ends_at):%H:%M} · {visit.service.name}",
                url=_url("visit", visit.pk),
                status=visit.status,
            )
        )


def _place_free_slots(clinic: Clinic, by_key: dict[ColumnKey, Column], slots: list[selectors.Slot], *, bookable: bool) -> None:
    """Free slots; for the front desk (`bookable`) each links to the new-visit form with its time filled in."""
    for slot in slots:
        local = _local_time(clinic, slot.starts_at)
        column = by_key.get((slot.doctor_id, local.date()))
        if column is None:
            continue
        url = (
            _url("new", clinic=clinic.pk, doctor=slot.doctor_id, date=local.date().isoformat(), starts_at=local.isoformat())
            if bookable
            else ""
        )
        column.blocks.append(
            Block(
                "free",
                _minutes(clinic, column.day, slot.starts_at),
                _minutes(clinic, column.day, slot.ends_at),
                label=f"{local:%H:%M}",
                url=url,
            )
        )


def _hours_shown(columns: list[Column]) -> tuple[int, int]:
    """(first, last) hour of the grid: the default working day, widened to whatever the columns hold."""
    edges = [b.start for c in columns for b in c.blocks + c.background] + [b.end for c in columns for b in c.blocks + c.background]
    if not edges:
        return DEFAULT_HOURS
    return max(0, min(int(min(edges) // 60), DEFAULT_HOURS[0])), min(24, max(int(-(-max(edges) // 60)), DEFAULT_HOURS[1]))


def _position(block: Block, *, offset: float) -> None:
    """Pixels from the grid's first hour (`offset`, in minutes); its lane gives the share of the column's width."""
    block.top = round((block.start - offset) * PX_PER_MINUTE, 1)
    block.height = round(max(14.0, (block.end - block.start) * PX_PER_MINUTE - 2), 1)
    block.width = round(100 / block.lanes, 2)
    block.left = round(block.lane * block.width, 2)


def _page(request: HttpRequest, clinic: Clinic, title: str, **context: Any) -> dict[str, Any]:
    clinics = list(selectors.calendar_clinics(user=request.user))
    return {
        **admin.site.each_context(request),
        "title": title,
        "clinic": clinic,
        "clinics": clinics if len(clinics) > 1 else [],
        "front_desk": has_role(request.user, clinic.pk, FRONT_DESK),
        "can_see_attendance": selectors.attendance_clinics(user=request.user).exists(),
        **context,
    }


def _render(request: HttpRequest, clinic: Clinic, template: str, context: dict[str, Any]) -> HttpResponse:
    with timezone.override(clinic.tz):  # every time on the page in the clinic's zone
        return render(request, f"admin/appointments/{template}", context)


# --- calendar views -----------------------------------------------------------------------------


@require_GET
def calendar_day(request: HttpRequest) -> HttpResponse:
    """One day: a column per doctor, visits coloured by status, free slots to click."""
    clinic = _clinic(request)
    day = _date_param(request, "date", _today(clinic))
    doctors = selectors.calendar_doctors(user=request.user, clinic=clinic)
    columns = [Column(d.full_name, "", day, d, url=_url("week", clinic=clinic.pk, doctor=d.pk, date=day.isoformat())) for d in doctors]
    context = _page(
        request,
        clinic,
        _("Calendar"),
        view="day",
        day=day,
        day_label=date_format(day, "l, j E Y"),
        prev_url=_url("day", clinic=clinic.pk, date=(day - timedelta(days=1)).isoformat()),
        next_url=_url("day", clinic=clinic.pk, date=(day + timedelta(days=1)).isoformat()),
        today_url=_url("day", clinic=clinic.pk),
        new_url=_url("new", clinic=clinic.pk, date=day.isoformat()),
        **_grid(request, clinic, columns, day, 1),
    )
    return _render(request, clinic, "calendar.html", context)


@require_GET
def calendar_week(request: HttpRequest) -> HttpResponse:
    """One doctor's week, Monday to Sunday: a column per day."""
    clinic = _clinic(request)
    doctors = selectors.calendar_doctors(user=request.user, clinic=clinic)
    if not doctors:
        messages.info(request, _("The clinic has no active doctors yet."))
        return HttpResponseRedirect(_url("day", clinic=clinic.pk))
    wanted = _int_param(request, "doctor")
    doctor = next((d for d in doctors if d.pk == wanted), doctors[0])
    day = _date_param(request, "date", _today(clinic))
    monday = day - timedelta(days=day.weekday())
    columns = [
        Column(
            date_format(monday + timedelta(days=i), "D j M"),
            "",
            monday + timedelta(days=i),
            doctor,
            url=_url("day", clinic=clinic.pk, date=(monday + timedelta(days=i)).isoformat()),
        )
        for i in range(7)
    ]
    context = _page(
        request,
        clinic,
        _("Calendar"),
        view="week",
        day=day,
        doctor=doctor,
        doctors=doctors,
        day_label=_("Week of %(date)s") % {"date": date_format(monday, "j E Y")},
        prev_url=_url("week", clinic=clinic.pk, doctor=doctor.pk, date=(monday - timedelta(days=7)).isoformat()),
        next_url=_url("week", clinic=clinic.pk, doctor=doctor.pk, date=(monday + timedelta(days=7)).isoformat()),
        today_url=_url("week", clinic=clinic.pk, doctor=doctor.pk),
        new_url=_url("new", clinic=clinic.pk, doctor=doctor.pk, date=day.isoformat()),
        **_grid(request, clinic, columns, monday, 7),
    )
    return _render(request, clinic, "calendar.html", context)


@require_http_methods(["GET", "POST"])
def visit_new(request: HttpRequest) -> HttpResponse:
    """Book a visit: find the contact, pick doctor, service and a free time. Selections re-render the form (POST without `book`)."""
    clinic = _clinic(request)
    if not has_role(request.user, clinic.pk, FRONT_DESK):
        raise PermissionDenied(_("Visits are booked by the front desk."))
    day = _date_param(request, "date", _today(clinic))
    doctors = selectors.calendar_doctors(user=request.user, clinic=clinic)
    doctor = next((d for d in doctors if d.pk == _int_param(request, "doctor")), None)
    service_choices = list(selectors.bookable_services(clinic=clinic, doctor=doctor))
    service = next((s for s in service_choices if s.pk == _int_param(request, "service")), None)
    if service is None and doctor is not None and len(service_choices) == 1:
        service = service_choices[0]
    query = _param(request, "q").strip()[:100]
    patients, patient = _patient_choices(request, clinic, query)
    thread = _booking_thread(request, clinic, patient)
    wanted = _wanted_time(request, clinic, day)
    wanted_start = "" if wanted is None else _param(request, "starts_at").strip()
    times: list[tuple[str, str]] = []
    if doctor and service:
        times = _time_choices(clinic, day, doctor, service, patient, wanted)
        if wanted is not None:
            wanted_start = _local_time(clinic, wanted).isoformat()  # the form posts it back as listed

    if request.method == "POST" and "book" in request.POST:
        visit = _book(request, clinic, doctor, service, patient, wanted_start, thread)
        if visit is not None:
            if thread is not None:  # booked from a conversation: back to it, where the card shows the visit
                return HttpResponseRedirect(reverse("inbox:thread", args=[thread.pk]))
            return HttpResponseRedirect(_url("day", clinic=clinic.pk, date=_local_time(clinic, visit.starts_at).date().isoformat()))

    context = _page(
        request,
        clinic,
        _("New visit"),
        day=day,
        doctors=doctors,
        doctor=doctor,
        services=service_choices,
        service=service,
        query=query,
        patients=patients,
        patient=patient,
        times=times,
        wanted_start=wanted_start,
        sources=[
            (Visit.Source.OPERATOR, Visit.Source.OPERATOR.label),
            (Visit.Source.PHONE, Visit.Source.PHONE.label),
        ],
        source=_param(request, "source") or (Visit.Source.OPERATOR if thread else Visit.Source.PHONE),
        thread=thread,
        back_url=reverse("inbox:thread", args=[thread.pk]) if thread else _url("day", clinic=clinic.pk, date=day.isoformat()),
    )
    return _render(request, clinic, "visit_new.html", context)


def _patient_choices(request: HttpRequest, clinic: Clinic, query: str) -> tuple[list[Patient], Patient | None]:
    """The contacts the search finds, and the person chosen (?patient=, or the only one found)."""
    patients = [c.patient for c in selectors.bookable_contacts(user=request.user, clinic=clinic, query=query)]
    patient_id = _int_param(request, "patient")
    patient = selectors.bookable_patient(user=request.user, clinic=clinic, patient_id=patient_id) if patient_id else None
    if patient is not None and all(p.pk != patient.pk for p in patients):
        patients.insert(0, patient)  # the chosen person stays a choice when the search changes
    if patient is None and len(patients) == 1:
        patient = patients[0]  # the search found exactly this person: nothing is left to choose
    return patients, patient


def _wanted_time(request: HttpRequest, clinic: Clinic, day: date) -> datetime | None:
    """A time clicked on the calendar, or chosen before: kept while the date stays the same."""
    typed = _param(request, "starts_at").strip()
    try:
        wanted = client_input.parse_moment(typed) if typed else None
    except ValueError:
        return None
    if wanted is None or timezone.is_naive(wanted) or _local_time(clinic, wanted).date() != day:
        return None
    return wanted


def _time_choices(
    clinic: Clinic, day: date, doctor: Doctor, service: Service, patient: Patient | None, wanted: datetime | None
) -> list[tuple[str, str]]:
    """(value, label) of the day's free times with the doctor; the wanted time stays first even if no longer free."""
    slots = selectors.free_slots(
        clinic=clinic, date_from=day, days=1, service=service, doctor_ids=[doctor.pk], for_patient=False,
        patient_id=patient.pk if patient else None,
    )  # fmt: skip
    times = [(_local_time(clinic, s.starts_at).isoformat(), f"{_local_time(clinic, s.starts_at):%H:%M}") for s in slots]
    if wanted is not None:
        wanted_start = _local_time(clinic, wanted).isoformat()
        if wanted_start not in dict(times):
            times.insert(0, (wanted_start, _("%(time)s (as chosen)") % {"time": f"{_local_time(clinic, wanted):%H:%M}"}))
    return times


def _booking_thread(request: HttpRequest, clinic: Clinic, patient: Patient | None) -> Thread | None:
    """The conversation a booking was started from (?thread=, the card's "Book a visit"): the visit is filed
    under it and the operator returns to it. Only a thread of this clinic about this patient counts."""
    thread_id = _int_param(request, "thread")
    if thread_id is None or patient is None:
        return None
    try:
        thread = messaging_selectors.thread_for(user=request.user, thread_id=thread_id)
    except Thread.DoesNotExist:
        return None
    return thread if thread.clinic_id == clinic.pk and thread.patient_id == patient.pk else None


def _book(
    request: HttpRequest,
    clinic: Clinic,
    doctor: Doctor | None,
    service: Service | None,
    patient: Patient | None,
    starts_at: str,
    thread: Thread | None = None,
) -> Visit | None:
    """Book from the posted form; what is missing or refused becomes a message (None), the booked visit otherwise."""
    missing = [
        label
        for label, value in ((_("patient"), patient), (_("doctor"), doctor), (_("service"), service), (_("time"), starts_at))
        if not value
    ]
    if missing or patient is None or doctor is None or service is None:
        messages.error(request, _("Choose the %(fields)s.") % {"fields": ", ".join(str(m) for m in missing)})
        return None
    try:
        moment = client_input.parse_moment(starts_at)
    except ValueError:
        messages.error(request, _("Choose a time from the list."))
        return None
    source = request.POST.get("source")
    if source not in (Visit.Source.OPERATOR, Visit.Source.PHONE):
        source = Visit.Source.OPERATOR
    try:
        visit = services.visit_book(
            actor=request.user,
            clinic=clinic,
            doctor=doctor,
            service=service,
            patient=patient,
            starts_at=moment,
            source=source,
            thread=thread,
        )
    except REFUSALS as exc:
        _refuse(request, exc)
        return None
    messages.success(
        request,
        _("Visit booked: %(when)s, %(patient)s with %(doctor)s.")
        % {"when": services.visit_time_text(clinic, visit.starts_at), "patient": patient.full_name, "doctor": doctor.full_name},
    )
    return visit


@require_http_methods(["GET", "POST"])
def visit_page(request: HttpRequest, visit_id: int) -> HttpResponse:
    """One visit with its actions: confirm, move to a free slot, cancel with a reason, mark came / no-show."""
    try:
        visit = selectors.visit_for(user=request.user, visit_id=visit_id)
    except Visit.DoesNotExist:
        raise Http404(_("No such visit.")) from None
    clinic = visit.clinic
    if request.method == "POST":
        done = _visit_action(request, visit)
        return HttpResponseRedirect(_url("visit", (done or visit).pk))

    now = timezone.now()
    upcoming = visit.status in Visit.UPCOMING and visit.starts_at > now
    context = _page(
        request,
        clinic,
        _("Visit"),
        visit=visit,
        local_start=_local_time(clinic, visit.starts_at),
        local_end=_local_time(clinic, visit.ends_at),
        can_confirm=visit.status == Visit.Status.BOOKED and upcoming,
        can_move=upcoming,
        can_cancel=visit.status in Visit.UPCOMING,
        can_mark=visit.status != Visit.Status.CANCELLED and visit.starts_at <= now,
        not_started=visit.status != Visit.Status.CANCELLED and visit.starts_at > now,
        moved_to=getattr(visit, "rescheduled_to", None) if visit.status == Visit.Status.CANCELLED else None,
        day_url=_url("day", clinic=clinic.pk, date=_local_time(clinic, visit.starts_at).date().isoformat()),
    )
    if upcoming:
        context.update(_move_choices(request, visit))
    return _render(request, clinic, "visit.html", context)


def _move_choices(request: HttpRequest, visit: Visit) -> dict[str, Any]:
    """Free slots of a week from the chosen day for the chosen doctor of the service, ignoring the visit itself."""
    clinic = visit.clinic
    first = max(_date_param(request, "move_date", _local_time(clinic, visit.starts_at).date()), _today(clinic))
    doctors = list(selectors.bookable_doctors(clinic=clinic, service=visit.service))
    doctor = next((d for d in doctors if d.pk == _int_param(request, "move_doctor")), visit.doctor)
    slots = selectors.free_slots(
        clinic=clinic, date_from=first, days=7, service=visit.service, doctor_ids=[doctor.pk], for_patient=False, exclude_visit=visit.pk,
        patient_id=visit.patient_id,
    )  # fmt: skip
    days = [
        (
            date_format(day, "D j M"),
            [(_local_time(clinic, s.starts_at).isoformat(), f"{_local_time(clinic, s.starts_at):%H:%M}") for s in day_slots],
        )
        for day, day_slots in selectors.slots_by_day(clinic=clinic, slots=slots)
    ]
    return {"move_date": first, "move_doctors": doctors, "move_doctor": doctor, "move_days": days}


def _visit_action(request: HttpRequest, visit: Visit) -> Visit | None:
    """Run the posted action through its service; refusals become messages. Returns the visit to show next."""
    action = request.POST.get("action", "")
    user = request.user
    try:
        if action == "confirm":
            services.visit_confirm(actor=user, visit=visit)
            messages.success(request, _("The visit is confirmed."))
        elif action == "cancel":
            done = services.visit_cancel(actor=user, visit=visit, reason=request.POST.get("reason", "")[:300])
            messages.success(request, _("The visit is cancelled (late).") if done.cancelled_late else _("The visit is cancelled."))
        elif action in (Visit.Status.COMPLETED, Visit.Status.NO_SHOW):
            done = services.visit_mark(actor=user, visit=visit, status=action)
            messages.success(request, _("Marked: %(status)s.") % {"status": done.get_status_display()})
        elif action == "move":
            try:
                moment = client_input.parse_moment(request.POST.get("starts_at", ""))
            except ValueError:
                raise ValidationError({"starts_at": _("Choose a free time from the list.")}) from None
            doctors = {d.pk: d for d in selectors.bookable_doctors(clinic=visit.clinic, service=visit.service)}
            doctor = _chosen(doctors, request.POST["doctor"]) if request.POST.get("doctor") else visit.doctor
            if doctor is None:
                raise ValidationError({"doctor": _("This doctor does not provide this service.")})
            moved = services.visit_reschedule(actor=user, visit=visit, starts_at=moment, doctor=doctor)
            messages.success(
                request, _("The visit is moved to %(when)s.") % {"when": services.visit_time_text(visit.clinic, moved.starts_at)}
            )
            return moved
        else:
            raise ValidationError(_("Unknown action."))
    except REFUSALS as exc:
        _refuse(request, exc)
    return None


# --- attendance -----------------------------------------------------------------------------------


@require_GET
def attendance(request: HttpRequest) -> HttpResponse:
    """Where patients are lost, per doctor and period (owners and managers; others get 403)."""
    clinics = list(selectors.attendance_clinics(user=request.user))
    if not clinics:
        raise PermissionDenied(_("Only the clinic's owner or manager sees attendance."))
    wanted = _int_param(request, "clinic")
    clinic = next((c for c in clinics if c.pk == wanted), clinics[0])
    today = _today(clinic)
    date_to = _date_param(request, "date_to", today)
    date_from = _date_param(request, "date_from", date_to - timedelta(days=29))
    if date_from > date_to:
        messages.error(request, _("The start date must not be after the end date: showing the 30 days up to the end date."))
        date_from = date_to - timedelta(days=29)
    if (date_to - date_from).days > 366:
        messages.error(request, _("Choose at most a year: showing the year up to the end date."))
        date_from = date_to - timedelta(days=365)
    rows = selectors.attendance(user=request.user, clinic=clinic, date_from=date_from, date_to=date_to)
    context = _page(
        request,
        clinic,
        _("Attendance"),
        view="attendance",
        clinics=clinics if len(clinics) > 1 else [],
        rows=rows,
        totals=selectors.attendance_totals(rows),
        date_from=date_from,
        date_to=date_to,
    )
    return _render(request, clinic, "attendance.html", context)


# --- times offered in a conversation -------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def offer_times(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Pick a service, a doctor and a day, tick up to six free times and send them into the thread.

    The inbox opens this as a panel inside the conversation (its fetches get the panel alone); the
    same form is a page of its own without JavaScript."""
    if not is_staff_member(request.user):
        raise PermissionDenied(_("Only the clinic offers times."))
    thread = messaging_selectors.thread_for(user=request.user, thread_id=thread_id)  # 404 for another clinic's
    fragment = bool(getattr(request, "htmx", False))  # the inbox's fetches (django-htmx): the panel alone
    clinic = thread.clinic
    service_choices = list(selectors.bookable_services(clinic=clinic))
    service = next((s for s in service_choices if s.pk == _int_param(request, "service")), None)
    if service is None and len(service_choices) == 1:
        service = service_choices[0]
    doctors = list(selectors.bookable_doctors(clinic=clinic, service=service)) if service else []
    doctor = next((d for d in doctors if d.pk == _int_param(request, "doctor")), None)
    today = _today(clinic)
    # Patients book within the clinic's horizon (free_slots applies it); a year bounds what a typed date can ask for.
    first = min(max(_date_param(request, "date", today), today), today + timedelta(days=365))
    sent = request.method == "POST" and "send" in request.POST and _send_offer(request, thread, service, {d.pk: d for d in doctors})
    if sent and not fragment:
        return HttpResponseRedirect(reverse("inbox:thread", args=[thread.pk]))
    days = _offer_days(clinic, thread, service, doctors, doctor, first) if service is not None else []
    context = _page(
        request,
        clinic,
        _("Offer times"),
        thread=thread,
        services=service_choices,
        service=service,
        doctors=doctors,
        doctor=doctor,
        day=first,
        today=today,
        days=days,
        chosen=set() if sent else set(request.POST.getlist("slot")),
        text="" if sent else request.POST.get("text", ""),
        offer_max=OFFER_MAX,
        fragment=fragment,
        sent=sent,
        offer_url=reverse("calendar:offer", args=[thread.pk]),
        back_url=reverse("inbox:thread", args=[thread.pk]),
    )
    return _render(request, clinic, "_offer_panel.html" if fragment else "offer.html", context)


def _offer_days(
    clinic: Clinic, thread: Thread, service: Service, doctors: list[Doctor], doctor: Doctor | None, first: date
) -> list[tuple[str, list[dict[str, str]]]]:
    """A week of times to tick, by day: the patient's own rules apply (they book what is offered), at most OFFER_SHOWN;
    with no doctor chosen, each time names its doctor."""
    names = {d.pk: d.full_name for d in doctors}
    found = selectors.free_slots(
        clinic=clinic, date_from=first, days=7, service=service, doctor_ids=[doctor.pk] if doctor else None, for_patient=True,
        patient_id=thread.patient_id,
    )[:OFFER_SHOWN]  # fmt: skip
    return [
        (
            date_format(day, "D j M"),
            [
                {
                    "value": f"{s.doctor_id}|{_local_time(clinic, s.starts_at).isoformat()}",
                    "label": f"{_local_time(clinic, s.starts_at):%H:%M}",
                    "doctor": "" if doctor else names.get(s.doctor_id, ""),
                }
                for s in day_slots
            ],
        )
        for day, day_slots in selectors.slots_by_day(clinic=clinic, slots=found)
    ]


def _send_offer(request: HttpRequest, thread: Thread, service: Service | None, doctors: dict[int, Doctor]) -> bool:
    chosen = request.POST.getlist("slot")
    if service is None or not chosen:
        messages.error(request, _("Choose a service and at least one time."))
        return False
    if len(chosen) > OFFER_MAX:
        messages.error(request, _("Offer at most %(count)s times.") % {"count": OFFER_MAX})
        return False
    slots = []
    for value in chosen:
        doctor_id, _sep, moment = value.partition("|")
        doctor = _chosen(doctors, doctor_id)
        try:
            starts_at = client_input.parse_moment(moment)
        except ValueError:
            starts_at = None
        if doctor is None or starts_at is None:
            messages.error(request, _("Choose the times from the list."))
            return False
        slots.append((doctor, service, starts_at))
    try:
        services.slots_propose(actor=request.user, thread=thread, slots=slots, text=request.POST.get("text", "")[:500])
    except REFUSALS as exc:
        _refuse(request, exc)
        return False
    messages.success(request, _("The times are sent: the patient books one with a tap."))
    return True


app_name = "calendar"
urlpatterns = [
    path("", admin.site.admin_view(calendar_day), name="day"),
    path("week/", admin.site.admin_view(calendar_week), name="week"),
    path("new/", admin.site.admin_view(visit_new), name="new"),
    path("visit/<int:visit_id>/", admin.site.admin_view(visit_page), name="visit"),
    path("attendance/", admin.site.admin_view(attendance), name="attendance"),
    path("offer/<int:thread_id>/", admin.site.admin_view(offer_times), name="offer"),
]
