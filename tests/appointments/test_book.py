"""Booking through the API: the patient's rules, each refusal a clear 4xx, nothing half-written."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from appointments.models import BookingRules, Visit
from messaging.models import Message, Thread
from patients.models import ConsentRecord
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db


def _book(api, doctor, service, starts_at, **extra):
    return api.post(
        "/api/visits/", {"doctor": doctor.pk, "service": service.pk, "starts_at": starts_at.isoformat(), **extra}, format="json"
    )


def test_patient_books_a_free_slot_and_the_visit_shows_in_her_clinic_thread(api, alpha, checkup, anna, anna_thread, day):
    api.force_login(anna.user)
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["starts_at"] == f"{day}T10:00:00+03:00"
    assert body["status"] == "booked"
    assert body["source"] == "portal"
    assert body["doctor"]["name"] == alpha.doctor.full_name
    visit = Visit.objects.get()
    assert (visit.patient, visit.clinic, visit.created_by) == (anna, alpha.clinic, anna.user)
    thread = Thread.objects.get(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.CLINIC)
    last = thread.messages.order_by("-seq").first()
    assert last.author == Message.Author.SYSTEM
    assert last.text.startswith("Visit booked:") and "10:00" in last.text and alpha.doctor.full_name in last.text
    assert last.data == {"visit": visit.pk, "visit_event": "booked", "patient": visit.patient_id}


def test_patient_books_for_her_child_but_not_for_a_stranger(api, alpha, checkup, anna, anna_thread, day):
    child = f.DependantFactory(guardian=anna, full_name="Masha Petrova")
    api.force_login(anna.user)
    assert _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10), patient=child.pk).status_code == 201
    stranger = f.PatientFactory()
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 11), patient=stranger.pk)
    assert response.status_code == 400
    assert response.json()["detail"] == "No such patient among yours."
    assert Visit.objects.count() == 1


@pytest.mark.parametrize(
    ("when", "code", "detail"),
    [
        (lambda clinic, day: timezone.now() - timedelta(hours=1), "invalid", "This time has already passed."),
        (lambda clinic, day: at(clinic, day, 20), "invalid", "The doctor does not see patients at this time."),
        (lambda clinic, day: at(clinic, day, 17, 45), "invalid", "The doctor does not see patients at this time."),
        (lambda clinic, day: timezone.now() + timedelta(minutes=30), "invalid", "Online booking closes 2 h before the visit"),
        (lambda clinic, day: timezone.now() + timedelta(days=61), "invalid", "Visits can be booked at most 60 days ahead."),
    ],
    ids=["past", "after-hours", "runs-past-closing", "too-soon", "too-far"],
)
def test_times_a_patient_cannot_book_are_refused_with_the_reason(api, alpha, checkup, anna, anna_thread, day, when, code, detail):
    api.force_login(anna.user)
    response = _book(api, alpha.doctor, checkup, when(alpha.clinic, day))
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["detail"].startswith(detail)
    assert not Visit.objects.exists()


def test_service_the_doctor_does_not_provide_and_another_clinics_doctor(api, alpha, beta, checkup, anna, anna_thread, day):
    api.force_login(anna.user)
    other_service = f.ServiceFactory(clinic=alpha.clinic, name="Implant")
    response = _book(api, alpha.doctor, other_service, at(alpha.clinic, day, 10))
    assert response.status_code == 400
    assert response.json()["detail"] == f"{alpha.doctor.full_name} does not provide «Implant»."
    response = _book(api, beta.doctor, checkup, at(beta.clinic, day, 10))
    assert response.status_code == 400
    assert response.json()["detail"] == "This clinic does not offer this service."
    assert not Visit.objects.exists()


def test_too_many_upcoming_visits(api, alpha, checkup, anna, anna_thread, day):
    BookingRules.objects.create(clinic=alpha.clinic, max_upcoming_visits=2)
    api.force_login(anna.user)
    assert _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10)).status_code == 201
    assert _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 11)).status_code == 201
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 12))
    assert response.status_code == 400
    assert "You already have 2 upcoming visits" in response.json()["detail"]
    assert Visit.objects.count() == 2


def test_no_booking_without_consent(api, alpha, checkup, anna, anna_thread, day):
    ConsentRecord.objects.filter(patient=anna).delete()
    api.force_login(anna.user)
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10))
    assert response.status_code == 403
    assert response.json()["code"] == "consent_required"
    assert not Visit.objects.exists()


def test_a_taken_slot_answers_409_with_the_three_nearest_free_times(api, alpha, checkup, anna, anna_thread, day):
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10))
    api.force_login(anna.user)
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "slot_taken"
    assert [a["starts_at"] for a in body["alternatives"]] == [
        f"{day}T09:00:00+03:00", f"{day}T09:30:00+03:00", f"{day}T10:30:00+03:00",
    ]  # fmt: skip
    assert body["detail"].startswith("This time has just been taken. Nearest free times:")
    assert Visit.objects.count() == 1


def test_malformed_input_is_a_400_not_a_500(api, alpha, checkup, anna, anna_thread):
    api.force_login(anna.user)
    for payload in (
        {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": "tomorrow at ten"},
        {"doctor": "x", "service": checkup.pk, "starts_at": "2026-12-01T10:00:00+03:00"},
        {"doctor": 999999, "service": checkup.pk, "starts_at": "2026-12-01T10:00:00+03:00"},
        {},
    ):
        response = api.post("/api/visits/", payload, format="json")
        assert response.status_code == 400, payload
        assert response.json()["detail"]


def test_anonymous_cannot_book(api, alpha, checkup, day):
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10))
    assert response.status_code == 403


def test_operator_books_by_phone_inside_the_notice_patients_must_give(api, alpha, checkup, anna, anna_thread, day):
    BookingRules.objects.create(clinic=alpha.clinic, min_notice_minutes=7 * 24 * 60)
    api.force_login(anna.user)
    assert _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10)).status_code == 400  # too soon for online booking
    api.force_login(alpha.operator)
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10), patient=anna.pk, source="phone")
    assert response.status_code == 201, response.json()
    assert response.json()["source"] == "phone"
    assert Visit.objects.get().created_by == alpha.operator


def test_operator_cannot_book_a_patient_of_another_clinic(api, alpha, beta, checkup, day):
    boris = f.PatientFactory()
    f.ThreadFactory(clinic=beta.clinic, patient=boris)
    api.force_login(alpha.operator)
    response = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10), patient=boris.pk)
    assert response.status_code == 400
    assert response.json()["detail"] == "No such patient among yours."


def test_a_time_without_its_offset_is_refused(api, alpha, checkup, anna, anna_thread, day):
    api.force_login(anna.user)
    response = api.post("/api/visits/", {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": f"{day}T10:00:00"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Give the time with its UTC offset, e.g. 2026-12-14T10:00:00+03:00."
    utc = _book(api, alpha.doctor, checkup, at(alpha.clinic, day, 10).astimezone(UTC))  # any offset names the same moment
    assert utc.status_code == 201
    assert utc.json()["starts_at"] == f"{day}T10:00:00+03:00"
