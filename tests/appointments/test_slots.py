"""Free slots: the weekly template, exceptions, visits held, notice and horizon, in each clinic's own zone."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from appointments.models import BookingRules, ScheduleException, Visit
from appointments.selectors import free_slots
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db


def _starts(clinic, slots):
    return [timezone.localtime(s.starts_at, clinic.tz).strftime("%H:%M") for s in slots]


def test_a_day_is_cut_into_slots_of_the_service_length(alpha, checkup, day):
    slots = free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup)
    assert len(slots) == 18  # 09:00–18:00 in 30-minute slots
    assert _starts(alpha.clinic, slots)[:3] == ["09:00", "09:30", "10:00"]
    long = f.ServiceFactory(clinic=alpha.clinic, duration_minutes=45)
    alpha.doctor.services.add(long)
    assert _starts(alpha.clinic, free_slots(clinic=alpha.clinic, date_from=day, days=1, service=long))[:3] == ["09:00", "09:45", "10:30"]


def test_the_same_wall_clock_hours_are_different_instants_in_moscow_and_yekaterinburg(alpha, beta, checkup, day):
    service = f.ServiceFactory(clinic=beta.clinic, duration_minutes=30)
    beta.doctor.services.add(service)
    f.ScheduleRuleFactory(doctor=beta.doctor, weekday=day.weekday(), starts=time(9), ends=time(10))

    moscow = free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup)[0]
    yekaterinburg = free_slots(clinic=beta.clinic, date_from=day, days=1, service=service)[0]

    # Neither zone has daylight saving: 09:00 is always UTC+3 in Moscow and UTC+5 in Yekaterinburg.
    assert moscow.starts_at == datetime.combine(day, time(6), tzinfo=UTC)
    assert yekaterinburg.starts_at == datetime.combine(day, time(4), tzinfo=UTC)


def test_a_zone_with_daylight_saving_keeps_the_wall_clock_across_the_change(alpha):
    """A clinic in Berlin: 09:00 is 08:00 UTC in winter and 07:00 UTC in summer (the day after the switch)."""
    clinic = f.ClinicFactory(time_zone="Europe/Berlin")
    doctor = f.DoctorFactory(clinic=clinic)
    service = f.ServiceFactory(clinic=clinic)
    doctor.services.add(service)
    for weekday in range(7):
        f.ScheduleRuleFactory(doctor=doctor, weekday=weekday, starts=time(9), ends=time(10))
    year = timezone.now().year + 1
    switch = max(datetime(year, 3, d).date() for d in range(25, 32) if datetime(year, 3, d).weekday() == 6)  # last Sunday of March
    slots = free_slots(clinic=clinic, date_from=switch - timedelta(days=1), days=2, service=service, for_patient=False)
    assert [s.starts_at.astimezone(UTC).hour for s in slots] == [8, 8, 7, 7]


def test_vacation_sick_hours_and_extra_shift_change_the_template(alpha, checkup, day):
    doctor = alpha.doctor
    f.ScheduleExceptionFactory(doctor=doctor, kind=ScheduleException.Kind.VACATION, date_from=day, date_to=day + timedelta(days=1))
    assert free_slots(clinic=alpha.clinic, date_from=day, days=2, service=checkup) == []

    later = day + timedelta(days=2)
    f.ScheduleExceptionFactory(
        doctor=doctor, kind=ScheduleException.Kind.SICK, date_from=later, date_to=later, starts=time(9), ends=time(17)
    )
    f.ScheduleExceptionFactory(
        doctor=doctor, kind=ScheduleException.Kind.EXTRA, date_from=later, date_to=later, starts=time(18), ends=time(19)
    )
    assert _starts(alpha.clinic, free_slots(clinic=alpha.clinic, date_from=later, days=1, service=checkup)) == [
        "17:00", "17:30", "18:00", "18:30",
    ]  # fmt: skip


def test_held_visits_take_their_time_and_cancelled_ones_give_it_back(alpha, checkup, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 9))
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10, 15))  # off the grid: takes 10:00 and 10:30
    starts = _starts(alpha.clinic, free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup))
    assert starts[:3] == ["09:30", "11:00", "11:30"]

    Visit.objects.filter(pk=visit.pk).update(status=Visit.Status.CANCELLED)
    assert _starts(alpha.clinic, free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup))[0] == "09:00"


def test_minimum_notice_and_horizon_bound_what_patients_see(alpha, checkup):
    BookingRules.objects.create(clinic=alpha.clinic, min_notice_minutes=180, horizon_days=5)
    now = timezone.now()
    today = timezone.localtime(now, alpha.clinic.tz).date()
    slots = free_slots(clinic=alpha.clinic, date_from=today, days=14, service=checkup)
    assert slots and slots[0].starts_at >= now + timedelta(minutes=180)
    assert slots[-1].starts_at <= now + timedelta(days=5)
    staff = free_slots(clinic=alpha.clinic, date_from=today, days=14, service=checkup, for_patient=False)
    assert staff[-1].starts_at > now + timedelta(days=12)  # staff may book beyond the patients' horizon


def test_a_search_without_a_doctor_covers_every_doctor_of_the_service(alpha, checkup, day):
    other = f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Other")
    other.services.add(checkup)
    f.ScheduleRuleFactory(doctor=other, weekday=day.weekday(), starts=time(14), ends=time(15))
    f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Not This Service")
    slots = free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup)
    assert {s.doctor_id for s in slots} == {alpha.doctor.pk, other.pk}
    assert len(slots) == 18 + 2


def test_api_lists_slots_by_day_in_the_clinic_zone(api, alpha, checkup, day):
    response = api.get(f"/api/clinics/alpha/slots/?service={checkup.pk}&date_from={day}&days=2")
    assert response.status_code == 200
    body = response.json()
    assert body["time_zone"] == "Europe/Moscow"
    assert [d["date"] for d in body["days"]] == [str(day), str(day + timedelta(days=1))]
    first = body["days"][0]["slots"][0]
    assert first["starts_at"] == f"{day}T09:00:00+03:00"
    assert first["doctor_name"] == alpha.doctor.full_name


@pytest.mark.parametrize(
    ("query", "field"),
    [("service=999999", "service"), ("doctor=999999", "doctor"), ("date_from=2026-13-40", "date_from"), ("days=400", "days")],
)
def test_api_refuses_bad_search_parameters_with_a_message(api, alpha, checkup, query, field):
    response = api.get(f"/api/clinics/alpha/slots/?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["detail"]


def test_api_does_not_search_another_clinics_service(api, alpha, beta, checkup):
    service = f.ServiceFactory(clinic=beta.clinic)
    response = api.get(f"/api/clinics/alpha/slots/?service={service.pk}")
    assert response.status_code == 400
    assert response.json()["detail"] == "This clinic has no such service."
