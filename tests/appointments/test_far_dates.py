"""Dates no one means (year 9999, year 1) used to overflow into a 500; every date a client gives is bounded where it enters.

The staff bound is PLANNING_HORIZON_DAYS; patients are further held to their clinic's booking horizon.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from appointments.models import Visit
from messaging.models import Message, Thread
from tests.conftest import at

pytestmark = pytest.mark.django_db

EXTREMES = ["9999-12-31T23:30:00+03:00", "9999-12-31T23:30:00-05:00", "0001-01-01T00:00:00+03:00"]
TOO_FAR = f"Give a time at most {settings.PLANNING_HORIZON_DAYS} days ahead."


@pytest.mark.parametrize("date_from", ["9999-12-31", "0001-01-01"])
def test_public_slot_search_far_out_is_400_with_a_reason(api, alpha, checkup, date_from):
    response = api.get("/api/clinics/alpha/slots/", {"date_from": date_from, "service": checkup.pk})
    assert response.status_code == 400
    assert response.json()["errors"]["date_from"][0] in (
        f"Give a date at most {settings.PLANNING_HORIZON_DAYS} days ahead.",
        "Give a date after 1900-01-01.",
    )


def test_public_slot_search_inside_the_bound_still_answers(api, alpha, checkup, day):
    response = api.get("/api/clinics/alpha/slots/", {"date_from": day.isoformat(), "service": checkup.pk, "days": 1})
    assert response.status_code == 200 and response.json()["days"][0]["slots"]


@pytest.mark.parametrize("starts_at", EXTREMES)
def test_staff_booking_far_out_is_400_and_stores_nothing(api, alpha, checkup, anna, anna_thread, starts_at):
    api.force_login(alpha.operator)
    body = {"doctor": alpha.doctor.pk, "service": checkup.pk, "patient": anna.pk, "starts_at": starts_at}
    response = api.post("/api/visits/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["starts_at"][0] in (TOO_FAR, "This time is long past.")
    assert Visit.objects.count() == 0


def test_staff_booking_just_past_the_planning_horizon_is_refused_by_the_service(api, alpha, checkup, anna, anna_thread, day):
    """Inside what the edge accepts is still the service's rule: staff book at most PLANNING_HORIZON_DAYS ahead."""
    api.force_login(alpha.operator)
    late = at(alpha.clinic, day + timedelta(days=settings.PLANNING_HORIZON_DAYS - 3), 10) + timedelta(hours=12)
    body = {"doctor": alpha.doctor.pk, "service": checkup.pk, "patient": anna.pk, "starts_at": late.isoformat()}
    response = api.post("/api/visits/", body, format="json")
    assert response.status_code == 400
    assert Visit.objects.count() == 0


def test_patient_booking_far_out_is_400(api, alpha, checkup, anna, anna_thread):
    api.force_login(anna.user)
    response = api.post("/api/visits/", {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": EXTREMES[0]}, format="json")
    assert response.status_code == 400 and response.json()["errors"]["starts_at"] == [TOO_FAR]
    assert Visit.objects.count() == 0


@pytest.mark.parametrize("starts_at", EXTREMES)
def test_offering_far_out_slots_in_a_thread_is_400_and_sends_nothing(api, alpha, checkup, anna, anna_thread, starts_at):
    thread = Thread.objects.get(patient=anna)
    api.force_login(alpha.operator)
    response = api.post(
        f"/api/threads/{thread.pk}/slots/",
        {"slots": [{"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": starts_at}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["slots"]["0"]["starts_at"][0] in (TOO_FAR, "This time is long past.")
    assert Message.objects.count() == 0


def test_the_admin_offer_screen_refuses_a_forged_year_9999_time(web, alpha, checkup, anna, anna_thread):
    thread = Thread.objects.get(patient=anna)
    web.force_login(alpha.operator)
    response = web.post(
        f"/admin/calendar/offer/{thread.pk}/",
        {"service": checkup.pk, "slot": [f"{alpha.doctor.pk}|{EXTREMES[0]}"], "send": "1"},
    )
    assert response.status_code == 200
    assert any("from the list" in str(m) for m in response.context["messages"])
    assert Message.objects.count() == 0


def test_the_admin_new_visit_form_refuses_a_forged_year_9999_time(web, alpha, checkup, anna, anna_thread):
    web.force_login(alpha.operator)
    response = web.post(
        "/admin/calendar/new/",
        {"doctor": alpha.doctor.pk, "service": checkup.pk, "patient": anna.pk, "starts_at": EXTREMES[1], "book": "1"},
    )
    assert response.status_code in (200, 400)
    assert Visit.objects.count() == 0


@pytest.mark.parametrize("param", ["date_from", "date_to"])
def test_visit_list_and_attendance_filters_far_out_are_400(api, alpha, param):
    api.force_login(alpha.owner)
    for path, extra in (("/api/visits/", {}), ("/api/staff/attendance/", {"clinic": alpha.clinic.pk})):
        response = api.get(path, {param: "9999-12-31", **extra})
        assert response.status_code == 400, path
        assert response.json()["errors"][param] == [f"Give a date at most {settings.PLANNING_HORIZON_DAYS} days ahead."]
        early = api.get(path, {param: "0001-01-01", **extra})
        assert early.status_code == 400 and early.json()["errors"][param] == ["Give a date after 1900-01-01."]


def test_calendar_day_far_out_shows_a_message_not_an_error(web, alpha, checkup):
    web.force_login(alpha.operator)
    response = web.get("/admin/calendar/", {"date": "9999-12-31"})
    assert response.status_code == 200
    assert any("days ahead" in str(m) for m in response.context["messages"])
