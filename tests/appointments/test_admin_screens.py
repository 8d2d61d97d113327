"""Booking admin screens: visit list, schedules (also inline under the doctor), waiting list, offers, attendance, inbox card."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from appointments.models import ScheduleRule, SlotOffer, Visit, WaitlistEntry
from audit.models import AuditEvent
from messaging.models import Message
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db

VISITS = "/admin/appointments/visit/"
ATTENDANCE = "/admin/calendar/attendance/"


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def warm_queries(web, url: str, params: dict | None = None) -> int:
    web.get(url, params or {})
    with CaptureQueriesContext(connection) as captured:
        page(web.get(url, params or {}))
    return len(captured.captured_queries)


# --- visits list --------------------------------------------------------------------------------


def test_visit_list_filters_search_and_tenancy(web, alpha, beta, checkup, anna, anna_thread, day):
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 11), status=Visit.Status.NO_SHOW,
                   patient=f.PatientFactory(full_name="Nick Noshow"))  # fmt: skip
    f.VisitFactory(doctor=beta.doctor, service=f.ServiceFactory(clinic=beta.clinic), patient=f.PatientFactory(full_name="Boris Betov"),
                   starts_at=at(beta.clinic, day, 10))  # fmt: skip
    web.force_login(alpha.operator)
    html = page(web.get(VISITS))
    assert "Anna Petrova" in html and "Nick Noshow" in html and "Boris Betov" not in html
    assert "Nick Noshow" not in page(web.get(VISITS, {"status__exact": "booked"}))
    assert "Anna Petrova" not in page(web.get(VISITS, {"q": "Noshow"}))
    assert "Anna Petrova" in page(web.get(VISITS, {"q": "9160000001"}))
    assert "Anna Petrova" in page(web.get(VISITS, {"source__exact": "portal", "doctor__id__exact": alpha.doctor.pk}))
    assert f"{day:%d.%m.%Y} 10:00" in html  # the clinic's wall clock


def test_visit_opens_on_the_calendar_and_add_goes_to_the_booking_form(web, alpha, checkup, anna, anna_thread, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    web.force_login(alpha.operator)
    assert web.get(f"{VISITS}{visit.pk}/change/")["Location"] == f"/admin/calendar/visit/{visit.pk}/"
    assert web.get(f"{VISITS}add/")["Location"] == "/admin/calendar/new/"
    # No form saves a visit directly: the change view is never a form, deletion is refused.
    assert web.post(f"{VISITS}{visit.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Visit.objects.filter(pk=visit.pk).exists()


def test_doctor_sees_only_own_visits_in_the_list(web, alpha, checkup, anna, anna_thread, day):
    other = f.DoctorFactory(clinic=alpha.clinic)
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    f.VisitFactory(doctor=other, service=checkup, patient=f.PatientFactory(full_name="Other Patient"), starts_at=at(alpha.clinic, day, 10))
    web.force_login(alpha.doctor_user)
    html = page(web.get(VISITS))
    assert "Anna Petrova" in html and "Other Patient" not in html


def test_visit_list_query_count_does_not_grow(web, alpha, checkup, day):
    web.force_login(alpha.operator)
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 9))
    few = warm_queries(web, VISITS)
    for hour in range(10, 17):
        doctor = f.DoctorFactory(clinic=alpha.clinic)
        f.VisitFactory(doctor=doctor, service=f.ServiceFactory(clinic=alpha.clinic), starts_at=at(alpha.clinic, day, hour))
    assert warm_queries(web, VISITS) == few


# --- set-up screens ------------------------------------------------------------------------------


def test_manager_edits_the_weekly_schedule_inline_under_the_doctor(web, alpha):
    web.force_login(alpha.manager)
    url = f"/admin/clinics/doctor/{alpha.doctor.pk}/change/"
    html = page(web.get(url))
    assert "schedule_rules-TOTAL_FORMS" in html
    data = {
        "clinic": alpha.clinic.pk, "full_name": alpha.doctor.full_name, "bio": "", "is_active": "on", "user": alpha.doctor_user.pk,
        "schedule_rules-TOTAL_FORMS": "2", "schedule_rules-INITIAL_FORMS": "0",
        "schedule_rules-MIN_NUM_FORMS": "0", "schedule_rules-MAX_NUM_FORMS": "1000",
        "schedule_rules-0-weekday": "0", "schedule_rules-0-starts": "09:00", "schedule_rules-0-ends": "14:00",
        "schedule_rules-1-weekday": "0", "schedule_rules-1-starts": "15:00", "schedule_rules-1-ends": "20:00",
    }  # fmt: skip
    response = web.post(url, data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    rules = list(ScheduleRule.objects.filter(doctor=alpha.doctor).order_by("starts"))
    assert [(r.clinic_id, r.starts, r.ends) for r in rules] == [(alpha.clinic.pk, time(9), time(14)), (alpha.clinic.pk, time(15), time(20))]
    assert AuditEvent.objects.filter(action="schedulerule.created").count() == 2


def test_schedule_rule_with_end_before_start_is_a_form_error(web, alpha):
    web.force_login(alpha.manager)
    response = web.post(
        "/admin/appointments/schedulerule/add/",
        {"clinic": alpha.clinic.pk, "doctor": alpha.doctor.pk, "weekday": 1, "starts": "18:00", "ends": "09:00"},
    )
    assert response.status_code == 200 and "The end must be after the start" in response.content.decode()
    assert not ScheduleRule.objects.exists()


def test_operator_reads_schedules_but_cannot_change_them_and_never_sees_another_clinics(web, alpha, beta):
    f.ScheduleRuleFactory(doctor=alpha.doctor)
    f.ScheduleRuleFactory(doctor=beta.doctor)
    web.force_login(alpha.operator)
    html = page(web.get("/admin/appointments/schedulerule/"))
    assert "Dr Dima" in html and "Dr Dora" not in html
    assert web.get("/admin/appointments/schedulerule/add/").status_code == 403
    assert page(web.get("/admin/appointments/scheduleexception/")) and page(web.get("/admin/appointments/bookingrules/"))


def test_waitlist_add_goes_through_the_service_and_action_removes(web, alpha, checkup, anna, anna_thread):
    web.force_login(alpha.operator)
    response = web.post("/admin/appointments/waitlistentry/add/", {"doctor": alpha.doctor.pk, "service": checkup.pk, "patient": anna.pk})
    assert response.status_code == 302
    entry = WaitlistEntry.objects.get()
    assert (entry.clinic, entry.is_active) == (alpha.clinic, True)
    assert AuditEvent.objects.filter(action="waitlist.joined").exists()
    web.post("/admin/appointments/waitlistentry/", {"action": "leave", "_selected_action": [entry.pk]})
    assert not WaitlistEntry.objects.get().is_active


def test_waitlist_refusal_is_a_message(web, alpha, anna, anna_thread):
    stray = f.ServiceFactory(clinic=alpha.clinic, name="Not Dima's")
    web.force_login(alpha.operator)
    response = web.post(
        "/admin/appointments/waitlistentry/add/", {"doctor": alpha.doctor.pk, "service": stray.pk, "patient": anna.pk}, follow=True
    )
    assert response.status_code == 200
    assert any("does not provide" in str(m) for m in response.context["messages"])
    assert not WaitlistEntry.objects.exists()


def test_slot_offers_are_read_only(web, alpha, checkup, anna, anna_thread):
    offer = SlotOffer.objects.create(
        clinic=alpha.clinic, doctor=alpha.doctor, service=checkup,
        starts_at=timezone.now() + timedelta(days=2), ends_at=timezone.now() + timedelta(days=2, minutes=30),
    )  # fmt: skip
    offer.offered_to.add(anna)
    web.force_login(alpha.manager)
    assert "Dr Dima" in page(web.get("/admin/appointments/slotoffer/"))
    assert "Anna Petrova" in page(web.get(f"/admin/appointments/slotoffer/{offer.pk}/change/"))
    assert web.get("/admin/appointments/slotoffer/add/").status_code == 403


# --- attendance ---------------------------------------------------------------------------------


@pytest.fixture
def month(alpha, checkup, anna, anna_thread):
    """Past visits of Dima with every outcome, and one of another doctor."""
    now = timezone.now()
    make = lambda days, **kw: f.VisitFactory(doctor=kw.pop("doctor", alpha.doctor), service=checkup, patient=anna,  # noqa: E731
                                             starts_at=now - timedelta(days=days), **kw)  # fmt: skip
    make(3, status=Visit.Status.COMPLETED)
    make(4, status=Visit.Status.COMPLETED)
    make(5, status=Visit.Status.NO_SHOW)
    make(6, status=Visit.Status.CANCELLED, cancelled_late=True)
    make(7, status=Visit.Status.CANCELLED, cancelled_late=False)
    make(60, status=Visit.Status.COMPLETED)  # outside the default 30 days
    make(2, status=Visit.Status.COMPLETED, doctor=f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Zed"))


def test_attendance_table_with_totals(web, alpha, month):
    web.force_login(alpha.manager)
    html = page(web.get(ATTENDANCE))
    rows = html.split('id="attendance"')[1]
    assert '<th scope="row">Dr Dima</th><td>5</td><td>2</td><td>1</td><td>1</td><td>1</td><td>0</td><td>50 %</td>' in rows
    assert '<th scope="row">Total</th><td>6</td><td>3</td><td>1</td><td>1</td><td>1</td><td>0</td><td>60 %</td>' in rows
    wide = page(web.get(ATTENDANCE, {"date_from": (timezone.now() - timedelta(days=90)).date().isoformat()}))
    assert '<th scope="row">Dr Dima</th><td>6</td><td>3</td>' in wide


def test_attendance_bad_dates_are_messages(web, alpha, month):
    web.force_login(alpha.owner)
    response = web.get(ATTENDANCE, {"date_from": "2026-12-31", "date_to": "2026-01-01"})
    assert response.status_code == 200
    assert any("must not be after" in str(m) for m in response.context["messages"])
    assert web.get(ATTENDANCE, {"date_from": "yesterday"}).status_code == 200


@pytest.mark.parametrize("role", ["operator", "doctor"])
def test_attendance_is_403_for_operators_and_doctors(web, alpha, role):
    web.force_login(alpha.user(role))
    assert web.get(ATTENDANCE).status_code == 403


def test_attendance_shows_only_own_clinic(web, alpha, beta, month):
    f.VisitFactory(doctor=beta.doctor, service=f.ServiceFactory(clinic=beta.clinic), starts_at=timezone.now() - timedelta(days=1),
                   status=Visit.Status.COMPLETED)  # fmt: skip
    web.force_login(alpha.manager)
    html = page(web.get(ATTENDANCE, {"clinic": beta.clinic.pk}))
    assert "Dr Dora" not in html and "Dr Dima" in html


def test_attendance_query_count_does_not_grow_with_doctors(web, alpha, month, checkup):
    web.force_login(alpha.manager)
    few = warm_queries(web, ATTENDANCE)
    for _ in range(5):
        doctor = f.DoctorFactory(clinic=alpha.clinic)
        f.VisitFactory(doctor=doctor, service=checkup, starts_at=timezone.now() - timedelta(days=1), status=Visit.Status.NO_SHOW)
    assert warm_queries(web, ATTENDANCE) == few


# --- inbox: the card's visits and offering times ------------------------------------------------


def test_inbox_card_shows_past_and_next_visits_in_the_clinics_zone(web, alpha, checkup, anna, anna_thread, day):
    thread = anna.threads.get()
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() - timedelta(days=10),
                   status=Visit.Status.NO_SHOW)  # fmt: skip
    web.force_login(alpha.operator)
    html = page(web.get(f"/admin/inbox/{thread.pk}/card/"))
    assert f"{day.day} " in html and ", 10:00</a> · Dr Dima · Check-up · <span>Booked</span>" in html
    assert "<span>No-show</span>" in html
    assert page(web.get(f"/admin/inbox/{thread.pk}/")).count("/admin/calendar/offer/") == 1


def test_offer_times_sends_a_message_with_slots(web, alpha, checkup, anna, anna_thread, day):
    thread = anna.threads.get()
    web.force_login(alpha.operator)
    html = page(web.get(f"/admin/calendar/offer/{thread.pk}/", {"service": checkup.pk}))
    values = [v for v in html.split('name="slot" value="')[1:4]]
    chosen = [v.split('"')[0] for v in values]
    assert len(chosen) == 3
    response = web.post(f"/admin/calendar/offer/{thread.pk}/", {"service": checkup.pk, "slot": chosen, "send": "1", "text": "Try these"})
    assert response["Location"] == f"/admin/inbox/{thread.pk}/"
    message = Message.objects.filter(thread=thread).exclude(data={}).get()
    assert len(message.data["slots"]) == 3 and message.text.startswith("Try these")


def test_offer_times_refusals(web, alpha, beta, checkup, anna, anna_thread):
    thread = anna.threads.get()
    web.force_login(alpha.operator)
    html = page(web.get(f"/admin/calendar/offer/{thread.pk}/", {"service": checkup.pk}))
    chosen = [v.split('"')[0] for v in html.split('name="slot" value="')[1:8]]
    too_many = web.post(f"/admin/calendar/offer/{thread.pk}/", {"service": checkup.pk, "slot": chosen, "send": "1"})
    assert any("at most 6" in str(m) for m in too_many.context["messages"])
    forged = web.post(
        f"/admin/calendar/offer/{thread.pk}/", {"service": checkup.pk, "slot": [f"{beta.doctor.pk}|2030-01-01T10:00:00+03:00"], "send": "1"}
    )
    assert any("from the list" in str(m) for m in forged.context["messages"])
    boris = f.ThreadFactory(clinic=beta.clinic)
    assert web.get(f"/admin/calendar/offer/{boris.pk}/").status_code == 404
    assert not Message.objects.filter(thread=thread).exclude(data={}).exists()


def test_attendance_api_counts_late_and_in_time_cancellations(api, alpha, month):
    """Regression: the selector's `cancelled_late` annotation shadowed the field of that name (SQL error on both databases)."""
    api.force_authenticate(alpha.manager)
    response = api.get("/api/staff/attendance/", {"clinic": alpha.clinic.pk})
    assert response.status_code == 200
    dima = next(r for r in response.json() if r["doctor_name"] == "Dr Dima")
    assert (dima["cancelled_late"], dima["cancelled_in_time"], dima["came_share"]) == (1, 1, 50)
