"""Reads for booking screens: free slots, visits, attendance, calendar files.

Free slots are computed, not stored: the weekly template, the exceptions and the
visits already held are read in three queries and intersected in memory (times
as epoch seconds, so a 14-day search over every doctor of a clinic stays cheap).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from django.db import connections
from django.db.models import Count, FloatField, Func, Q, QuerySet
from django.utils import timezone
from icalendar import Alarm, Calendar, Event

from appointments.models import BookingRules, ScheduleException, ScheduleRule, SlotOffer, Visit, WaitlistEntry
from clinics.models import Branch, Clinic, Doctor, Service
from clinics.tenancy import CLINIC_ADMINS, Role, clinic_roles, clinics_with_role
from patients.models import Contact, Patient

MAX_SEARCH_DAYS = 31


@dataclass(frozen=True)
class Slot:
    doctor_id: int
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    branch_id: int | None = None
    room: str = ""


@dataclass(frozen=True)
class _Interval:
    start: float  # epoch seconds
    end: float
    branch_id: int | None
    room: str


def booking_rules_for(clinic: Clinic) -> BookingRules:
    """The clinic's rules, or the defaults (unsaved) when the clinic never set its own."""
    try:
        return clinic.booking_rules
    except BookingRules.DoesNotExist:
        return BookingRules(clinic=clinic)


def bookable_doctors(*, clinic: Clinic, service: Service | None = None, specialty_id: int | None = None) -> QuerySet[Doctor]:
    doctors = Doctor.objects.filter(clinic=clinic, is_active=True)
    if service is not None:
        doctors = doctors.filter(services=service)
    if specialty_id is not None:
        doctors = doctors.filter(specialties=specialty_id)
    return doctors.order_by("full_name")


def bookable_services(*, clinic: Clinic, doctor: Doctor | None = None) -> QuerySet[Service]:
    """Active services that at least one active doctor (or this doctor) provides, grouped by specialty on screens."""
    services = Service.objects.filter(clinic=clinic, is_active=True, doctors__is_active=True)
    if doctor is not None:
        services = services.filter(doctors=doctor)
    return services.distinct().select_related("specialty").order_by("specialty__name", "name")


def _merge(intervals: list[_Interval]) -> list[_Interval]:
    merged: list[_Interval] = []
    for item in sorted(intervals, key=lambda i: i.start):
        if merged and item.start <= merged[-1].end:
            last = merged[-1]
            if item.end > last.end:
                merged[-1] = _Interval(last.start, item.end, last.branch_id, last.room)
        else:
            merged.append(item)
    return merged


def _cut(intervals: list[_Interval], start: float, end: float) -> list[_Interval]:
    out: list[_Interval] = []
    for item in intervals:
        if item.end <= start or item.start >= end:
            out.append(item)
            continue
        if item.start < start:
            out.append(_Interval(item.start, start, item.branch_id, item.room))
        if item.end > end:
            out.append(_Interval(end, item.end, item.branch_id, item.room))
    return out


class _Rule(NamedTuple):
    doctor_id: int
    weekday: int
    starts: time
    ends: time
    branch_id: int | None
    room: str
    valid_from: date | None
    valid_until: date | None


class _Exception(NamedTuple):
    doctor_id: int
    kind: str
    date_from: date
    date_to: date
    starts: time | None
    ends: time | None
    branch_id: int | None
    room: str

    @property
    def is_absence(self) -> bool:
        return self.kind != ScheduleException.Kind.EXTRA

    @property
    def hours(self) -> tuple[time, time] | None:
        """(starts, ends), or None for a whole day (the table's constraints: both or neither, and an extra always has them)."""
        return (self.starts, self.ends) if self.starts is not None and self.ends is not None else None


class _Schedule:
    """Working intervals of some doctors over a date range, in epoch seconds."""

    def __init__(self, *, clinic: Clinic, doctor_ids: Iterable[int], first: date, last: date):
        self.tz = clinic.tz
        self._seconds: dict[tuple[date, time], float] = {}
        doctor_ids = list(doctor_ids)
        # Plain tuples, not model instances: a clinic's 14 days are hundreds of rows read on every search.
        self.rules: dict[tuple[int, int], list[_Rule]] = defaultdict(list)
        rules = ScheduleRule.objects.filter(doctor_id__in=doctor_ids).filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=last), Q(valid_until__isnull=True) | Q(valid_until__gte=first)
        )
        for row in rules.values_list("doctor_id", "weekday", "starts", "ends", "branch_id", "room", "valid_from", "valid_until"):
            rule = _Rule(*row)
            self.rules[(rule.doctor_id, rule.weekday)].append(rule)
        self.exceptions: dict[int, list[_Exception]] = defaultdict(list)
        exceptions = ScheduleException.objects.filter(doctor_id__in=doctor_ids, date_from__lte=last, date_to__gte=first)
        for row in exceptions.values_list("doctor_id", "kind", "date_from", "date_to", "starts", "ends", "branch_id", "room"):
            exception = _Exception(*row)
            self.exceptions[exception.doctor_id].append(exception)

    def _epoch(self, day: date, moment: time) -> float:
        # Doctors mostly share their hours: each (day, time) is converted through the zone once per search.
        key = (day, moment)
        seconds = self._seconds.get(key)
        if seconds is None:
            seconds = self._seconds[key] = datetime.combine(day, moment, tzinfo=self.tz).timestamp()
        return seconds

    def intervals(self, doctor_id: int, day: date) -> list[_Interval]:
        found = [
            _Interval(self._epoch(day, r.starts), self._epoch(day, r.ends), r.branch_id, r.room)
            for r in self.rules.get((doctor_id, day.weekday()), ())
            if (r.valid_from is None or r.valid_from <= day) and (r.valid_until is None or r.valid_until >= day)
        ]
        todays = [e for e in self.exceptions.get(doctor_id, ()) if e.date_from <= day <= e.date_to]
        for extra in (e for e in todays if not e.is_absence):
            if (hours := extra.hours) is not None:
                found.append(_Interval(self._epoch(day, hours[0]), self._epoch(day, hours[1]), extra.branch_id, extra.room))
        found = _merge(found)
        for absence in (e for e in todays if e.is_absence):
            if (hours := absence.hours) is None:
                return []  # away the whole day
            found = _cut(found, self._epoch(day, hours[0]), self._epoch(day, hours[1]))
        return found


def _doctor_busy_times(
    doctor_ids: list[int], start: datetime, end: datetime, *, exclude_visit: int | None = None
) -> dict[int, tuple[list[float], list[float]]]:
    """Per doctor: (starts, ends) of held visits overlapping the range, sorted, as epoch seconds."""
    rows = Visit.objects.filter(doctor_id__in=doctor_ids, status__in=Visit.HOLDING, starts_at__lt=end, ends_at__gt=start).exclude(
        pk=exclude_visit
    )
    rows = rows.order_by("doctor_id", "starts_at")
    if connections[rows.db].vendor == "postgresql":
        # The database hands over epoch seconds: parsing thousands of timestamps in Python was most of a 14-day search.
        # The ORM writes the SQL; the rows come back as plain tuples (no per-row converters on thousands of rows).
        sql, params = rows.annotate(a=_Epoch("starts_at"), b=_Epoch("ends_at")).values_list("doctor_id", "a", "b").query.sql_with_params()
        with connections[rows.db].cursor() as cursor:
            cursor.execute(sql, params)
            values = cursor.fetchall()
    else:
        values = ((d, s.timestamp(), e.timestamp()) for d, s, e in rows.values_list("doctor_id", "starts_at", "ends_at"))
    busy: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for doctor_id, visit_start, visit_end in values:
        starts, ends = busy[doctor_id]
        starts.append(visit_start)
        ends.append(max(visit_end, ends[-1]) if ends else visit_end)
    return busy


def _patient_busy_times(
    patient_id: int, start: datetime, end: datetime, *, exclude_visit: int | None = None
) -> tuple[list[float], list[float]]:
    """(starts, ends) of the person's held visits in every clinic overlapping the range, as _doctor_busy_times gives them for a doctor."""
    rows = (
        Visit.objects.filter(patient_id=patient_id, status__in=Visit.HOLDING, starts_at__lt=end, ends_at__gt=start)
        .exclude(pk=exclude_visit)
        .order_by("starts_at")
        .values_list("starts_at", "ends_at")
    )
    starts: list[float] = []
    ends: list[float] = []
    for visit_start, visit_end in rows:
        starts.append(visit_start.timestamp())
        ends.append(max(visit_end.timestamp(), ends[-1]) if ends else visit_end.timestamp())
    return starts, ends


class _Epoch(Func):
    """A timestamp as float seconds since 1970 (PostgreSQL), the same number datetime.timestamp() gives."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::float8"
    output_field = FloatField()


def free_slots(
    *,
    clinic: Clinic,
    date_from: date,
    days: int = 14,
    service: Service | None = None,
    doctor_ids: Iterable[int] | None = None,
    specialty_id: int | None = None,
    for_patient: bool = True,
    now: datetime | None = None,
    exclude_visit: int | None = None,
    patient_id: int | None = None,
) -> list[Slot]:
    """Bookable slots, chronologically, over `days` local days from `date_from`.

    The slot length is the service's duration (or the clinic's default). With
    `for_patient`, the clinic's minimum notice and horizon apply; staff may book
    any future time inside working hours. `exclude_visit` ignores one visit (a
    move may land on part of its own old time). With `patient_id`, times that
    overlap that person's other visits in any clinic are left out: booking would
    refuse them (the other clinic's visit itself is never shown, only its time is gone).
    """
    days = max(1, min(days, MAX_SEARCH_DAYS))
    rules = booking_rules_for(clinic)
    searched = _searched_doctor_ids(clinic=clinic, service=service, doctor_ids=doctor_ids, specialty_id=specialty_id)
    if not searched:
        return []
    length = (service.duration_minutes if service else rules.default_slot_minutes) * 60
    last = date_from + timedelta(days=days - 1)
    schedule = _Schedule(clinic=clinic, doctor_ids=searched, first=date_from, last=last)
    range_start = datetime.combine(date_from, time.min, tzinfo=clinic.tz)
    range_end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=clinic.tz)
    busy = _doctor_busy_times(searched, range_start, range_end, exclude_visit=exclude_visit)
    patient_busy = _patient_busy_times(patient_id, range_start, range_end, exclude_visit=exclude_visit) if patient_id else ([], [])
    lower, upper = _bookable_window(rules=rules, now=now or timezone.now(), for_patient=for_patient)
    found: list[tuple[float, int, _Interval]] = []
    for doctor_id in searched:
        doctor_busy = busy.get(doctor_id, ([], []))
        for offset in range(days):
            for interval in schedule.intervals(doctor_id, date_from + timedelta(days=offset)):
                found.extend(
                    (begin, doctor_id, interval)
                    for begin in _free_starts(interval, length, lower, upper, doctor_busy=doctor_busy, patient_busy=patient_busy)
                )
    found.sort(key=lambda item: (item[0], item[1]))
    return _as_slots(found, length)


def _searched_doctor_ids(
    *, clinic: Clinic, service: Service | None, doctor_ids: Iterable[int] | None, specialty_id: int | None
) -> list[int]:
    """The doctors a search covers: those asked for (who provide the service, if one is given), else every bookable one."""
    if doctor_ids is None:
        return list(bookable_doctors(clinic=clinic, service=service, specialty_id=specialty_id).values_list("pk", flat=True))
    if service is not None:
        return list(bookable_doctors(clinic=clinic, service=service).filter(pk__in=list(doctor_ids)).values_list("pk", flat=True))
    return list(doctor_ids)


def _bookable_window(*, rules: BookingRules, now: datetime, for_patient: bool) -> tuple[float, float]:
    """(earliest, latest) start as epoch seconds: a patient within the clinic's notice and horizon, staff any future time."""
    if not for_patient:
        return now.timestamp(), float("inf")
    earliest = now + timedelta(minutes=rules.min_notice_minutes)
    return earliest.timestamp(), (now + timedelta(days=rules.horizon_days)).timestamp()


def _free_starts(
    interval: _Interval,
    length: float,
    lower: float,
    upper: float,
    *,
    doctor_busy: tuple[list[float], list[float]],
    patient_busy: tuple[list[float], list[float]],
) -> Iterator[float]:
    """Starts of free slots on the grid of one working interval: inside [lower, upper], clear of the doctor's
    and the patient's held visits. The hot loop of a search: a slot is one bisect per busy list."""
    starts, ends = doctor_busy
    patient_starts, patient_ends = patient_busy
    begin = interval.start
    while begin + length <= interval.end:
        if lower <= begin <= upper:
            index = bisect_right(ends, begin)
            if index == len(starts) or starts[index] >= begin + length:
                held = bisect_right(patient_ends, begin)
                if held == len(patient_starts) or patient_starts[held] >= begin + length:
                    yield begin
            else:  # jump to the end of the visit in the way, then back onto the grid
                begin += max(1, math.ceil((ends[index] - begin) / length)) * length
                continue
        begin += length


def _as_slots(found: list[tuple[float, int, _Interval]], length: float) -> list[Slot]:
    """Slots from (start, doctor, interval) in epoch seconds.

    Doctors share the grid: a few hundred distinct moments behind thousands of slots, each made a datetime once.
    """
    moments: dict[float, datetime] = {}

    def moment(seconds: float) -> datetime:
        made = moments.get(seconds)
        if made is None:
            made = moments[seconds] = datetime.fromtimestamp(seconds, tz=UTC)
        return made

    return [
        Slot(doctor_id=doctor_id, starts_at=moment(begin), ends_at=moment(begin + length), branch_id=interval.branch_id, room=interval.room)
        for begin, doctor_id, interval in found
    ]


def working_interval(*, clinic: Clinic, doctor: Doctor, starts_at: datetime, ends_at: datetime) -> _Interval | None:
    """The doctor's working interval that holds [starts_at, ends_at), or None (outside working hours)."""
    day = timezone.localtime(starts_at, clinic.tz).date()
    schedule = _Schedule(clinic=clinic, doctor_ids=[doctor.pk], first=day, last=day)
    start, end = starts_at.timestamp(), ends_at.timestamp()
    return next((i for i in schedule.intervals(doctor.pk, day) if i.start <= start and end <= i.end), None)


def nearest_free_slots(
    *,
    clinic: Clinic,
    doctor: Doctor,
    service: Service,
    around: datetime,
    count: int = 3,
    for_patient: bool = True,
    patient_id: int | None = None,
) -> list[Slot]:
    """The `count` free slots closest to `around` with this doctor, else with any doctor of the service."""
    day = timezone.localtime(max(around, timezone.now()), clinic.tz).date()
    for doctor_ids in ([doctor.pk], None):
        slots = free_slots(
            clinic=clinic, date_from=day, days=14, service=service, doctor_ids=doctor_ids, for_patient=for_patient, patient_id=patient_id
        )
        if slots:
            closest = sorted(slots, key=lambda s: abs((s.starts_at - around).total_seconds()))[:count]
            return sorted(closest, key=lambda s: s.starts_at)
    return []


def slots_by_day(*, clinic: Clinic, slots: list[Slot]) -> list[tuple[date, list[Slot]]]:
    days: dict[date, list[Slot]] = defaultdict(list)
    for slot in slots:
        days[timezone.localtime(slot.starts_at, clinic.tz).date()].append(slot)
    return sorted(days.items())


# --- visits ------------------------------------------------------------------------------------


def visits_visible(*, user: Any) -> QuerySet[Visit]:
    return Visit.objects.visible_to(user).select_related("clinic", "doctor", "service", "patient", "branch")


def visit_for(*, user: Any, visit_id: int) -> Visit:
    """A visit the user may see (404 otherwise: another clinic's visit does not exist for them)."""
    return visits_visible(user=user).get(pk=visit_id)


def patient_visits(*, user: Any, upcoming: bool | None = None) -> QuerySet[Visit]:
    """The portal's 'My visits': the family's visits in every clinic."""
    visits = visits_visible(user=user)
    now = timezone.now()
    if upcoming is True:
        return visits.filter(status__in=Visit.UPCOMING, ends_at__gt=now).order_by("starts_at")
    if upcoming is False:
        return visits.exclude(status__in=Visit.UPCOMING, ends_at__gt=now).order_by("-starts_at")
    return visits.order_by("-starts_at")


def contact_visits(*, user: Any, patient_id: int, clinic_id: int, limit: int = 5) -> tuple[list[Visit], list[Visit]]:
    """(past, next) visits of one patient in one clinic, for the card beside a conversation."""
    visits = visits_visible(user=user).filter(patient_id=patient_id, clinic_id=clinic_id)
    now = timezone.now()
    upcoming = list(visits.filter(status__in=Visit.UPCOMING, starts_at__gte=now).order_by("starts_at")[:limit])
    past = list(visits.filter(starts_at__lt=now).order_by("-starts_at")[:limit])
    return past, upcoming


def upcoming_count(*, patient_id: int, clinic_id: int) -> int:
    return Visit.objects.filter(patient_id=patient_id, clinic_id=clinic_id, status__in=Visit.UPCOMING, starts_at__gt=timezone.now()).count()


def calendar_clinics(*, user: Any) -> QuerySet[Clinic]:
    """Clinics whose calendar the user may open: where they work (every clinic for a superuser)."""
    clinics = Clinic.objects.all() if user.is_superuser else Clinic.objects.filter(pk__in=list(clinic_roles(user)))
    return clinics.filter(is_active=True).order_by("name")


def calendar_doctors(*, user: Any, clinic: Clinic, doctor_id: int | None = None) -> list[Doctor]:
    """The calendar's columns: the clinic's active doctors; a doctor sees only their own column.

    Other doctors' columns would show their visits as free time (a doctor sees only own
    visits), so they are left out rather than shown misleadingly empty.
    """
    doctors = Doctor.objects.visible_to(user).filter(clinic=clinic, is_active=True)
    if not user.is_superuser and clinic_roles(user).get(clinic.pk) == Role.DOCTOR:
        doctors = doctors.filter(user=user)
    if doctor_id:
        doctors = doctors.filter(pk=doctor_id)
    return list(doctors.order_by("full_name"))


def visits_between(*, user: Any, clinic: Clinic, first: date, days: int, doctor_ids: Iterable[int] | None = None) -> list[Visit]:
    """Visits starting on `days` local days from `first` (cancelled ones included), for the calendar."""
    start = datetime.combine(first, time.min, tzinfo=clinic.tz)
    visits = visits_visible(user=user).filter(clinic=clinic, starts_at__gte=start, starts_at__lt=start + timedelta(days=days))
    if doctor_ids is not None:
        visits = visits.filter(doctor_id__in=list(doctor_ids))
    return list(visits.order_by("starts_at", "pk"))


def working_hours(
    *, clinic: Clinic, doctor_ids: Iterable[int], first: date, days: int
) -> dict[tuple[int, date], list[tuple[datetime, datetime]]]:
    """{(doctor, local day): [(start, end), …]} of working intervals after exceptions (two queries)."""
    doctor_ids = list(doctor_ids)
    last = first + timedelta(days=days - 1)
    schedule = _Schedule(clinic=clinic, doctor_ids=doctor_ids, first=first, last=last)
    out: dict[tuple[int, date], list[tuple[datetime, datetime]]] = {}
    for doctor_id in doctor_ids:
        for offset in range(days):
            day = first + timedelta(days=offset)
            out[(doctor_id, day)] = [
                (datetime.fromtimestamp(i.start, tz=UTC), datetime.fromtimestamp(i.end, tz=UTC)) for i in schedule.intervals(doctor_id, day)
            ]
    return out


def bookable_contacts(*, user: Any, clinic: Clinic, query: str, limit: int = 20) -> list[Contact]:
    """Contacts of the clinic matching a name or phone fragment: who a visit may be booked for."""
    query = query.strip()
    if len(query) < 2:
        return []
    digits = "".join(ch for ch in query if ch.isdigit())
    match = Q(patient__full_name__icontains=query)
    if len(digits) >= 3:
        match |= Q(patient__phone__contains=digits)
    return list(
        Contact.objects.visible_to(user)
        .filter(match, clinic=clinic, merged_into__isnull=True)
        .select_related("patient")
        .order_by("patient__full_name")[:limit]
    )


def bookable_patient(*, user: Any, clinic: Clinic, patient_id: int) -> Patient | None:
    """The patient of a contact card of the clinic that the user sees, or None."""
    contacts = Contact.objects.visible_to(user).filter(clinic=clinic, merged_into__isnull=True)
    return Patient.objects.filter(pk=patient_id, pk__in=contacts.values("patient_id")).first()


def attendance_clinics(*, user: Any) -> QuerySet[Clinic]:
    """Clinics whose attendance the user may read: owners and managers (every clinic for a superuser)."""
    clinics = Clinic.objects.all() if user.is_superuser else Clinic.objects.filter(pk__in=clinics_with_role(user, CLINIC_ADMINS))
    return clinics.order_by("name")


@dataclass(frozen=True)
class AttendanceRow:
    doctor_id: int
    doctor_name: str
    booked: int
    came: int
    no_show: int
    cancelled_late: int
    cancelled_in_time: int
    upcoming: int

    @property
    def came_share(self) -> int | None:
        """Per cent of visits that took place among those whose outcome is known."""
        decided = self.came + self.no_show + self.cancelled_late
        return round(100 * self.came / decided) if decided else None


def attendance(*, user: Any, clinic: Clinic, date_from: date, date_to: date) -> list[AttendanceRow]:
    """Per doctor, for visits that start in [date_from, date_to] local: where patients are lost.

    Moves are not counted as cancellations: the moved-to visit carries the outcome.
    One grouped query whatever the number of doctors.
    """
    start = datetime.combine(date_from, time.min, tzinfo=clinic.tz)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=clinic.tz)
    cancelled = Q(status=Visit.Status.CANCELLED)
    moved = Visit.objects.filter(clinic=clinic, rescheduled_from__isnull=False).values("rescheduled_from_id")
    rows = (
        visits_visible(user=user)
        .filter(clinic=clinic, starts_at__gte=start, starts_at__lt=end)
        .exclude(pk__in=moved)
        .values("doctor_id", "doctor__full_name")
        .annotate(
            booked=Count("pk"),
            came=Count("pk", filter=Q(status=Visit.Status.COMPLETED)),
            no_show=Count("pk", filter=Q(status=Visit.Status.NO_SHOW)),
            # not named cancelled_late: that is a field, and the filter must read the field
            late=Count("pk", filter=cancelled & Q(cancelled_late=True)),
            in_time=Count("pk", filter=cancelled & Q(cancelled_late=False)),
            upcoming=Count("pk", filter=Q(status__in=Visit.UPCOMING)),
        )
        .order_by("doctor__full_name")
    )
    return [
        AttendanceRow(
            doctor_id=r["doctor_id"],
            doctor_name=r["doctor__full_name"],
            booked=r["booked"],
            came=r["came"],
            no_show=r["no_show"],
            cancelled_late=r["late"],
            cancelled_in_time=r["in_time"],
            upcoming=r["upcoming"],
        )
        for r in rows
    ]


def attendance_totals(rows: list[AttendanceRow]) -> AttendanceRow:
    """The table's totals row: sums of every column (the share is recomputed, not averaged)."""
    return AttendanceRow(
        doctor_id=0,
        doctor_name="",
        booked=sum(r.booked for r in rows),
        came=sum(r.came for r in rows),
        no_show=sum(r.no_show for r in rows),
        cancelled_late=sum(r.cancelled_late for r in rows),
        cancelled_in_time=sum(r.cancelled_in_time for r in rows),
        upcoming=sum(r.upcoming for r in rows),
    )


def waitlist_for(*, user: Any) -> QuerySet[WaitlistEntry]:
    return WaitlistEntry.objects.visible_to(user).filter(is_active=True).select_related("doctor", "service", "clinic", "patient")


def open_offer(*, offer_id: int, patient_id: int) -> SlotOffer | None:
    return SlotOffer.objects.filter(pk=offer_id, offered_to=patient_id).select_related("clinic", "doctor", "service").first()


def visit_calendar_file(visit: Visit) -> bytes:
    """The visit as an iCalendar (.ics) file: add-to-calendar on any phone."""
    calendar = Calendar()
    calendar.add("prodid", "-//Clinic CRM//visits//RU")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"visit-{visit.pk}@clinic-crm")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", visit.starts_at)
    event.add("dtend", visit.ends_at)
    event.add("summary", f"{visit.service.name} — {visit.doctor.full_name}")
    event.add("location", (visit.branch.address if visit.branch and visit.branch.address else visit.clinic.address) or visit.clinic.name)
    lines = [visit.clinic.name, visit.doctor.full_name, visit.service.name]
    if visit.room:
        lines.append(str(visit.room_label))
    if visit.clinic.phone:
        lines.append(str(visit.clinic.phone))
    event.add("description", "\n".join(lines))
    event.add("status", "CANCELLED" if visit.status == Visit.Status.CANCELLED else "CONFIRMED")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", visit.service.name)
    alarm.add("trigger", timedelta(hours=-2))
    event.add_component(alarm)
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


# --- portal booking screens ----------------------------------------------------------------------


def slot_days(*, clinic: Clinic, slots: list[Slot], date_from: date, days: int) -> list[tuple[date, list[Slot]]]:
    """Every local day of the strip with its slots, empty days included (the strip shows them greyed)."""
    found = dict(slots_by_day(clinic=clinic, slots=slots))
    return [(day, found.get(day, [])) for day in (date_from + timedelta(days=n) for n in range(days))]


def slot_place(*, clinic: Clinic, doctor: Doctor, starts_at: datetime, ends_at: datetime) -> tuple[str, str]:
    """(address, room) where a slot takes place: the branch of the doctor's working interval, else the clinic."""
    interval = working_interval(clinic=clinic, doctor=doctor, starts_at=starts_at, ends_at=ends_at)
    address = ""
    if interval is not None and interval.branch_id:
        address = Branch.objects.filter(pk=interval.branch_id).values_list("address", flat=True).first() or ""
    return address or clinic.address, interval.room if interval is not None else ""


@dataclass(frozen=True)
class CancelTerms:
    """What cancelling or moving a visit now means under its clinic's rules (shown before the patient decides)."""

    late: bool  # a cancellation now counts as late
    hours: int  # the clinic's late-cancel window
    can_move_online: bool


def visit_cancel_terms(*, visit: Visit, now: datetime | None = None) -> CancelTerms:
    rules = booking_rules_for(visit.clinic)
    left = visit.starts_at - (now or timezone.now())
    late = left < timedelta(hours=rules.late_cancel_hours)
    return CancelTerms(late=late, hours=rules.late_cancel_hours, can_move_online=visit.is_upcoming and not late)
