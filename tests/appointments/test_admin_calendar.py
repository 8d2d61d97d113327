"""The admin calendar: day and week grids, booking from a free slot, moves, cancellations, attendance marks."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from appointments.models import ScheduleException, Visit
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db

CAL = "/admin/calendar/"


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def olga(web, alpha):
    web.force_login(alpha.operator)
    return web


# --- the grid ---------------------------------------------------------------------------------


def test_day_shows_doctors_visits_by_status_and_free_slots(olga, alpha, checkup, anna, anna_thread, day):
    f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Second")
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    f.VisitFactory(
        doctor=alpha.doctor, service=checkup, patient=f.PatientFactory(full_name="Ivan Gone"),
        starts_at=at(alpha.clinic, day, 11), status=Visit.Status.CANCELLED,
    )  # fmt: skip
    html = page(olga.get(CAL, {"date": day.isoformat()}))
    assert "Dr Dima" in html and "Dr Second" in html
    assert re.search(r'class="booking-visit is-booked"[^>]*>\s*<strong>Anna Petrova</strong><span>10:00–10:30', html)
    assert 'class="booking-visit is-cancelled"' in html and "Ivan Gone" in html
    # Free slots of the working day link to the booking form with the doctor and the exact time.
    assert f"doctor={alpha.doctor.pk}" in html and "starts_at=" in html
    assert ">09:30</a>" in html and ">10:00</a>" not in html
    assert "Europe/Moscow" in html


def test_day_in_the_clinics_zone_not_the_servers(web, beta):
    service = f.ServiceFactory(clinic=beta.clinic, duration_minutes=30)
    beta.doctor.services.add(service)
    day = timezone.localtime(timezone.now(), beta.clinic.tz).date() + timedelta(days=2)
    f.ScheduleRuleFactory(doctor=beta.doctor, weekday=day.weekday())
    f.VisitFactory(doctor=beta.doctor, service=service, starts_at=at(beta.clinic, day, 9), patient=f.PatientFactory(full_name="Yulia Ural"))
    web.force_login(beta.operator)
    html = page(web.get(CAL, {"date": day.isoformat()}))
    assert "<strong>Yulia Ural</strong><span>09:00–09:30" in html  # 04:00 UTC shown as Yekaterinburg's 09:00


def test_week_of_a_doctor_has_seven_days(olga, alpha, checkup, anna, anna_thread, day):
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 12))
    f.ScheduleExceptionFactory(
        doctor=alpha.doctor, kind=ScheduleException.Kind.VACATION, date_from=day + timedelta(days=1), date_to=day + timedelta(days=1)
    )
    html = page(olga.get(f"{CAL}week/", {"doctor": alpha.doctor.pk, "date": day.isoformat()}))
    assert html.count('class="booking-col"') == 7
    assert "Anna Petrova" in html
    assert "not working" in html or (day + timedelta(days=1)).weekday() == 0  # the vacation day


def test_bad_date_is_a_message_not_a_500(olga, alpha, checkup):
    response = olga.get(CAL, {"date": "31.02.2026"})
    assert response.status_code == 200
    assert any("is not a date" in m for m in flashes(response))
    assert olga.get(f"{CAL}week/", {"doctor": "abc", "date": "x"}).status_code == 200


def test_doctor_sees_only_own_column_and_visits(web, alpha, checkup, anna, anna_thread, day):
    other = f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Other")
    other.services.add(checkup)
    f.ScheduleRuleFactory(doctor=other, weekday=day.weekday())
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    secret = f.VisitFactory(
        doctor=other, service=checkup, patient=f.PatientFactory(full_name="Not For Dima"), starts_at=at(alpha.clinic, day, 10)
    )
    web.force_login(alpha.doctor_user)
    html = page(web.get(CAL, {"date": day.isoformat()}))
    assert "Anna Petrova" in html and "Not For Dima" not in html and "Dr Other" not in html
    assert 'class="booking-free"' in html and "/admin/calendar/new/" not in html  # doctors do not book
    assert web.get(f"{CAL}visit/{secret.pk}/").status_code == 404
    assert web.get(f"{CAL}new/").status_code == 403


def test_another_clinics_visit_is_404(olga, beta):
    service = f.ServiceFactory(clinic=beta.clinic)
    visit = f.VisitFactory(doctor=beta.doctor, service=service, starts_at=timezone.now() + timedelta(days=1))
    assert olga.get(f"{CAL}visit/{visit.pk}/").status_code == 404
    assert olga.post(f"{CAL}visit/{visit.pk}/", {"action": "cancel"}).status_code == 404
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.BOOKED
    assert olga.get(f"/admin/appointments/visit/{visit.pk}/change/").status_code == 302  # "does not exist" redirect
    assert olga.get(f"{CAL}week/", {"doctor": beta.doctor.pk}).context["doctor"] != beta.doctor


def test_day_query_count_does_not_grow_with_visits_or_doctors(olga, alpha, checkup, day):
    def queries() -> int:
        olga.get(CAL, {"date": day.isoformat()})  # warm per-user caches
        with CaptureQueriesContext(connection) as captured:
            page(olga.get(CAL, {"date": day.isoformat()}))
        return len(captured.captured_queries)

    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 9))
    few = queries()
    for hour in range(10, 16):
        f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, hour))
    for _ in range(3):
        doctor = f.DoctorFactory(clinic=alpha.clinic)
        f.ScheduleRuleFactory(doctor=doctor, weekday=day.weekday())
        f.VisitFactory(doctor=doctor, service=checkup, starts_at=at(alpha.clinic, day, 9))
    assert queries() == few


# --- booking ------------------------------------------------------------------------------------


def test_operator_books_from_a_free_slot(olga, alpha, checkup, anna, anna_thread, day):
    start = at(alpha.clinic, day, 11)
    form = page(olga.get(f"{CAL}new/", {"doctor": alpha.doctor.pk, "date": day.isoformat(), "starts_at": start.isoformat()}))
    assert f'value="{start.isoformat()}" selected' in form
    found = page(olga.post(f"{CAL}new/", {"q": "Petrova", "doctor": alpha.doctor.pk, "date": day.isoformat(), "find": "1"}))
    assert f'<option value="{anna.pk}"' in found and "Check-up" in found  # the doctor's only service is chosen
    response = olga.post(
        f"{CAL}new/",
        {"patient": anna.pk, "doctor": alpha.doctor.pk, "service": checkup.pk, "date": day.isoformat(),
         "starts_at": start.isoformat(), "source": "phone", "book": "1"},
    )  # fmt: skip
    assert response.status_code == 302 and f"date={day.isoformat()}" in response["Location"]
    visit = Visit.objects.get(patient=anna)
    assert visit.starts_at == start and visit.source == "phone" and visit.created_by == alpha.operator


def test_taken_slot_is_refused_with_alternatives(olga, alpha, checkup, anna, anna_thread, day):
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 11))
    response = olga.post(
        f"{CAL}new/",
        {"patient": anna.pk, "doctor": alpha.doctor.pk, "service": checkup.pk, "date": day.isoformat(),
         "starts_at": at(alpha.clinic, day, 11).isoformat(), "book": "1"},
    )  # fmt: skip
    assert response.status_code == 200
    (message,) = flashes(response)
    assert "just been taken" in message and "Nearest free times" in message and "10:30" in message
    assert not Visit.objects.filter(patient=anna).exists()


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(20, "does not see patients at this time"), (None, "Choose the")],
)
def test_off_hours_and_missing_choices_are_messages(olga, alpha, checkup, anna, anna_thread, day, hour, expected):
    data = {"patient": anna.pk, "doctor": alpha.doctor.pk, "service": checkup.pk, "date": day.isoformat(), "book": "1"}
    if hour:
        data["starts_at"] = at(alpha.clinic, day, hour).isoformat()
    response = olga.post(f"{CAL}new/", data)
    assert response.status_code == 200
    assert any(expected in m for m in flashes(response))
    assert not Visit.objects.exists()


def test_cannot_book_another_clinics_patient_or_doctor(olga, alpha, beta, checkup, day):
    stranger = f.ContactFactory(clinic=beta.clinic, patient__full_name="Boris Betov").patient
    found = page(olga.post(f"{CAL}new/", {"q": "Betov", "find": "1"}))
    assert "Boris Betov" not in found
    response = olga.post(
        f"{CAL}new/",
        {"patient": stranger.pk, "doctor": beta.doctor.pk, "service": checkup.pk, "date": day.isoformat(),
         "starts_at": at(alpha.clinic, day, 11).isoformat(), "book": "1"},
    )  # fmt: skip
    assert response.status_code == 200 and any("Choose the" in m for m in flashes(response))
    assert not Visit.objects.exists()


# --- the visit page -----------------------------------------------------------------------------


def test_move_to_a_free_slot_and_refusal_of_a_taken_one(olga, alpha, checkup, anna, anna_thread, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    html = page(olga.get(f"{CAL}visit/{visit.pk}/"))
    assert "Move to another time" in html and "Cancel the visit" in html and 'value="no_show"' not in html
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 15))
    refused = olga.post(f"{CAL}visit/{visit.pk}/", {"action": "move", "starts_at": at(alpha.clinic, day, 15).isoformat()}, follow=True)
    assert any("just been taken" in m for m in flashes(refused))
    response = olga.post(f"{CAL}visit/{visit.pk}/", {"action": "move", "starts_at": at(alpha.clinic, day, 14).isoformat()})
    moved = Visit.objects.get(rescheduled_from=visit)
    assert response["Location"] == f"{CAL}visit/{moved.pk}/"
    assert moved.starts_at == at(alpha.clinic, day, 14)
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.CANCELLED


def test_cancel_with_reason(olga, alpha, checkup, anna, anna_thread, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    response = olga.post(f"{CAL}visit/{visit.pk}/", {"action": "cancel", "reason": "Called: ill"}, follow=True)
    assert any("cancelled" in m for m in flashes(response))
    visit.refresh_from_db()
    assert (visit.status, visit.cancel_reason, visit.cancelled_late, visit.cancelled_by) == ("cancelled", "Called: ill", False, "clinic")
    again = olga.post(f"{CAL}visit/{visit.pk}/", {"action": "cancel"}, follow=True)
    assert any("already cancelled" in m for m in flashes(again))


def test_mark_no_show_only_once_started(olga, alpha, checkup, anna, anna_thread, day):
    future = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    refused = olga.post(f"{CAL}visit/{future.pk}/", {"action": "no_show"}, follow=True)
    assert any("has not started yet" in m for m in flashes(refused))
    past = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() - timedelta(hours=2))
    assert "No-show" in page(olga.get(f"{CAL}visit/{past.pk}/"))
    olga.post(f"{CAL}visit/{past.pk}/", {"action": "no_show"})
    assert Visit.objects.get(pk=past.pk).status == Visit.Status.NO_SHOW
    olga.post(f"{CAL}visit/{past.pk}/", {"action": "completed"})  # a correction
    assert Visit.objects.get(pk=past.pk).status == Visit.Status.COMPLETED


def test_doctor_marks_own_visit_and_unknown_action_is_a_message(web, alpha, checkup, anna, anna_thread):
    past = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() - timedelta(hours=1))
    web.force_login(alpha.doctor_user)
    web.post(f"{CAL}visit/{past.pk}/", {"action": "completed"})
    assert Visit.objects.get(pk=past.pk).status == Visit.Status.COMPLETED
    response = web.post(f"{CAL}visit/{past.pk}/", {"action": "explode"}, follow=True)
    assert any("Unknown action" in m for m in flashes(response))
    bad = web.post(f"{CAL}visit/{past.pk}/", {"action": "move", "starts_at": "tomorrow"}, follow=True)
    assert response.status_code == bad.status_code == 200


def test_confirm(olga, alpha, checkup, anna, anna_thread, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    olga.post(f"{CAL}visit/{visit.pk}/", {"action": "confirm"})
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.CONFIRMED
