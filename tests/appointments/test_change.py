"""After booking: cancel, move, confirm, attendance, calendar file — and who may do each."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from icalendar import Calendar

from appointments.models import BookingRules, Visit
from appointments.selectors import free_slots
from messaging.models import Message
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def visit(api, alpha, checkup, anna, anna_thread, day):
    api.force_login(anna.user)
    response = api.post(
        "/api/visits/",
        {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": at(alpha.clinic, day, 10).isoformat()},
        format="json",
    )
    assert response.status_code == 201
    return Visit.objects.get(pk=response.json()["id"])


def _slot_starts(alpha, checkup, day):
    return [s.starts_at for s in free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup)]


def test_cancel_frees_the_slot_and_says_so_in_the_thread(api, alpha, checkup, anna, anna_thread, day, visit):
    assert at(alpha.clinic, day, 10) not in _slot_starts(alpha, checkup, day)
    response = api.post(f"/api/visits/{visit.pk}/cancel/", {"reason": "Feeling better"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    visit.refresh_from_db()
    assert (visit.cancelled_by, visit.cancel_reason, visit.cancelled_late) == ("patient", "Feeling better", False)
    assert at(alpha.clinic, day, 10) in _slot_starts(alpha, checkup, day)
    last = Message.objects.filter(thread__patient=anna).order_by("-seq").first()
    assert last.text.startswith("Visit cancelled:")


def test_a_cancellation_inside_the_window_counts_as_late(api, alpha, checkup, anna, anna_thread, day, visit):
    BookingRules.objects.create(clinic=alpha.clinic, late_cancel_hours=24 * 5)
    response = api.post(f"/api/visits/{visit.pk}/cancel/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["cancelled_late"] is True


def test_cancelling_twice_or_someone_elses_visit_is_refused(api, alpha, checkup, anna, anna_thread, day, visit):
    other = f.PatientFactory()
    api.force_login(other.user)
    assert api.post(f"/api/visits/{visit.pk}/cancel/", {}, format="json").status_code == 404
    assert api.get(f"/api/visits/{visit.pk}/").status_code == 404
    api.force_login(anna.user)
    assert api.post(f"/api/visits/{visit.pk}/cancel/", {}, format="json").status_code == 200
    response = api.post(f"/api/visits/{visit.pk}/cancel/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "This visit is already cancelled."


def test_another_clinics_staff_cannot_see_or_change_the_visit(api, alpha, beta, visit):
    for user in (beta.owner, beta.operator, beta.doctor_user):
        api.force_login(user)
        assert api.get("/api/visits/").json()["count"] == 0
        assert api.get(f"/api/visits/{visit.pk}/").status_code == 404
        assert api.post(f"/api/visits/{visit.pk}/cancel/", {}, format="json").status_code == 404


def test_a_doctor_sees_only_own_visits(api, alpha, checkup, anna, anna_thread, day, visit):
    colleague = f.DoctorFactory(clinic=alpha.clinic)
    f.VisitFactory(doctor=colleague, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 15))
    api.force_login(alpha.doctor_user)
    assert [v["id"] for v in api.get("/api/visits/").json()["results"]] == [visit.pk]
    api.force_login(alpha.operator)
    assert api.get("/api/visits/").json()["count"] == 2


def test_move_is_atomic_the_old_visit_stays_when_the_new_time_is_taken(api, alpha, checkup, anna, anna_thread, day, visit):
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 12))
    response = api.post(f"/api/visits/{visit.pk}/move/", {"starts_at": at(alpha.clinic, day, 12).isoformat()}, format="json")
    assert response.status_code == 409
    assert response.json()["alternatives"]
    visit.refresh_from_db()
    assert visit.status == "booked"
    assert Visit.objects.filter(patient=anna).count() == 1  # never zero


def test_move_cancels_the_old_visit_and_books_the_new_one_together(api, alpha, checkup, anna, anna_thread, day, visit):
    response = api.post(f"/api/visits/{visit.pk}/move/", {"starts_at": at(alpha.clinic, day, 10, 30).isoformat()}, format="json")
    assert response.status_code == 201, response.json()
    new = Visit.objects.get(pk=response.json()["id"])
    visit.refresh_from_db()
    assert visit.status == "cancelled" and visit.cancel_reason.startswith("Moved to")
    assert new.rescheduled_from == visit and new.status == "booked"
    assert Visit.objects.filter(patient=anna).exclude(status="cancelled").count() == 1  # never two
    assert Message.objects.filter(thread__patient=anna).order_by("-seq").first().text.startswith("Visit moved from")


def test_patients_cannot_move_inside_the_late_window(api, alpha, checkup, anna, anna_thread, day, visit):
    BookingRules.objects.create(clinic=alpha.clinic, late_cancel_hours=24 * 5)
    response = api.post(f"/api/visits/{visit.pk}/move/", {"starts_at": at(alpha.clinic, day, 11).isoformat()}, format="json")
    assert response.status_code == 400
    assert "can no longer be moved online" in response.json()["detail"]
    api.force_login(alpha.operator)  # the front desk still can
    assert api.post(f"/api/visits/{visit.pk}/move/", {"starts_at": at(alpha.clinic, day, 11).isoformat()}, format="json").status_code == 201


def test_confirm_then_attendance_only_once_started(api, alpha, checkup, anna, anna_thread, visit):
    assert api.post(f"/api/visits/{visit.pk}/confirm/").json()["status"] == "confirmed"
    assert api.post(f"/api/visits/{visit.pk}/mark/", {"status": "completed"}, format="json").status_code == 403
    api.force_login(alpha.operator)
    response = api.post(f"/api/visits/{visit.pk}/mark/", {"status": "no_show"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "The visit has not started yet."
    past = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() - timedelta(hours=3))
    assert api.post(f"/api/visits/{past.pk}/mark/", {"status": "no_show"}, format="json").json()["status"] == "no_show"
    assert api.post(f"/api/visits/{past.pk}/mark/", {"status": "bogus"}, format="json").status_code == 400


def test_calendar_file_is_valid_icalendar(api, alpha, checkup, anna, anna_thread, day, visit):
    response = api.get(f"/api/visits/{visit.pk}/calendar/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert event.decoded("dtstart") == at(alpha.clinic, day, 10)
    assert event.decoded("dtend") == at(alpha.clinic, day, 10, 30)
    assert str(event["summary"]) == f"Check-up — {alpha.doctor.full_name}"
    assert str(event["uid"]) == f"visit-{visit.pk}@clinic-crm"
    api.force_login(f.PatientFactory().user)
    assert api.get(f"/api/visits/{visit.pk}/calendar/").status_code == 404


def test_attendance_per_doctor_for_the_owner_only(api, alpha, checkup, anna, anna_thread):
    now = timezone.now()
    for hours, status, late in ((-50, "completed", False), (-30, "no_show", False), (-20, "cancelled", True), (-10, "cancelled", False)):
        v = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=now + timedelta(hours=hours), status=status)
        Visit.objects.filter(pk=v.pk).update(cancelled_late=late)
    api.force_login(alpha.owner)
    rows = api.get(f"/api/staff/attendance/?clinic={alpha.clinic.pk}").json()
    assert rows == [
        {
            "doctor_id": alpha.doctor.pk, "doctor_name": alpha.doctor.full_name, "booked": 4, "came": 1, "no_show": 1,
            "cancelled_late": 1, "cancelled_in_time": 1, "upcoming": 0, "came_share": 33,
        }
    ]  # fmt: skip
    api.force_login(alpha.operator)
    assert api.get(f"/api/staff/attendance/?clinic={alpha.clinic.pk}").status_code == 403
    api.force_login(alpha.owner)
    assert api.get(f"/api/staff/attendance/?clinic={alpha.clinic.pk}&date_from=bad").status_code == 400


def test_the_visit_list_costs_the_same_queries_for_3_or_30_visits(api, alpha, checkup, anna, anna_thread):
    def queries_for(count):
        Visit.objects.all().delete()
        start = timezone.now() + timedelta(days=2)
        for n in range(count):
            f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=start + timedelta(hours=n))
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/api/visits/")
        assert response.json()["count"] == count
        return len(captured)

    api.force_login(alpha.operator)
    api.get("/api/visits/")  # warm the session and role caches
    assert queries_for(3) == queries_for(30)
    api.force_login(anna.user)
    api.get("/api/visits/")
    assert queries_for(3) == queries_for(30)
