"""Times offered in the conversation: an operator's proposal, and a freed slot for the waiting list."""

import pytest
from django.db import IntegrityError, connection, transaction

from appointments.models import SlotOffer, Visit, WaitlistEntry
from messaging.models import Message, Thread
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db


def _thread(clinic, patient):
    return Thread.objects.get(clinic=clinic, patient=patient, kind=Thread.Kind.CLINIC)


def test_operator_proposes_times_and_the_patient_books_one_with_a_tap(api, alpha, checkup, anna, anna_thread, day):
    thread = _thread(alpha.clinic, anna)
    api.force_login(alpha.operator)
    slots = [{"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": at(alpha.clinic, day, h).isoformat()} for h in (10, 11)]
    response = api.post(f"/api/threads/{thread.pk}/slots/", {"slots": slots}, format="json")
    assert response.status_code == 201, response.json()
    proposal = Message.objects.get(thread=thread, seq=response.json()["seq"])
    assert [s["starts_at"] for s in proposal.data["slots"]] == [s["starts_at"] for s in slots]
    assert "Free times for you" in proposal.text

    api.force_login(anna.user)
    tapped = proposal.data["slots"][1]
    response = api.post(
        "/api/visits/",
        {"doctor": tapped["doctor"], "service": tapped["service"], "starts_at": tapped["starts_at"], "thread": thread.pk},
        format="json",
    )
    assert response.status_code == 201, response.json()
    visit = Visit.objects.get()
    assert (visit.source, visit.thread) == ("thread", thread)
    assert thread.messages.order_by("-seq").first().text.startswith("Visit booked:")


def test_proposals_are_checked_like_bookings(api, alpha, beta, checkup, anna, anna_thread, day):
    thread = _thread(alpha.clinic, anna)
    api.force_login(alpha.operator)
    taken = f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10))
    response = api.post(
        f"/api/threads/{thread.pk}/slots/",
        {"slots": [{"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": taken.starts_at.isoformat()}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"].endswith("is already taken.")
    response = api.post(f"/api/threads/{thread.pk}/slots/", {"slots": []}, format="json")
    assert response.status_code == 400
    api.force_login(beta.operator)  # another clinic's operator cannot even find the thread
    response = api.post(
        f"/api/threads/{thread.pk}/slots/",
        {"slots": [{"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": at(alpha.clinic, day, 11).isoformat()}]},
        format="json",
    )
    assert response.status_code == 404
    api.force_login(anna.user)
    assert api.post(f"/api/threads/{thread.pk}/slots/", {"slots": []}, format="json").status_code == 403
    assert Message.objects.filter(thread=thread, data__has_key="slots").count() == 0


def test_a_freed_slot_goes_to_the_waiting_list_and_the_first_to_accept_gets_it(api, alpha, checkup, anna, anna_thread, day):
    waiting = []
    for name in ("Vera", "Gleb"):
        patient = f.PatientFactory(full_name=name)
        f.ThreadFactory(clinic=alpha.clinic, patient=patient)
        f.WaitlistEntryFactory(doctor=alpha.doctor, service=checkup, patient=patient)
        waiting.append(patient)
    api.force_login(anna.user)
    booked = api.post(
        "/api/visits/",
        {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": at(alpha.clinic, day, 10).isoformat()},
        format="json",
    ).json()
    api.post(f"/api/visits/{booked['id']}/cancel/", {}, format="json")

    offer = SlotOffer.objects.get()
    assert set(offer.offered_to.all()) == set(waiting)
    vera, gleb = waiting
    for patient in waiting:
        message = _thread(alpha.clinic, patient).messages.order_by("-seq").first()
        assert message.author == Message.Author.SYSTEM
        assert message.data["offer"] == offer.pk
        assert "An earlier time is free" in message.text
    assert not anna.slot_offers.exists()  # the one who cancelled is not offered her own slot

    claim = {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": at(alpha.clinic, day, 10).isoformat(), "offer": offer.pk}
    api.force_login(gleb.user)
    assert api.post("/api/visits/", claim, format="json").status_code == 201
    api.force_login(vera.user)
    response = api.post("/api/visits/", claim, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_taken"
    offer.refresh_from_db()
    assert offer.status == "taken" and offer.visit.patient == gleb
    assert not WaitlistEntry.objects.get(patient=gleb).is_active
    assert WaitlistEntry.objects.get(patient=vera).is_active

    stranger = f.PatientFactory()
    api.force_login(stranger.user)
    assert api.post("/api/visits/", claim, format="json").json()["detail"] == "This offer was not made to you."


def test_patient_joins_and_leaves_the_waiting_list(api, alpha, checkup, anna, anna_thread):
    api.force_login(anna.user)
    response = api.post("/api/waitlist/", {"doctor": alpha.doctor.pk, "service": checkup.pk}, format="json")
    assert response.status_code == 201
    again = api.post("/api/waitlist/", {"doctor": alpha.doctor.pk, "service": checkup.pk}, format="json")
    assert again.json()["id"] == response.json()["id"]  # one entry per doctor
    assert [e["doctor_name"] for e in api.get("/api/waitlist/").json()["results"]] == [alpha.doctor.full_name]
    assert api.delete(f"/api/waitlist/{response.json()['id']}/").status_code == 204
    assert api.get("/api/waitlist/").json()["count"] == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no EXCLUDE; its guarantee is the serialized transaction")
def test_the_database_itself_refuses_an_overlapping_visit(alpha, checkup, anna, anna_thread, day):
    """Even code that skipped the service could not double-book on PostgreSQL."""
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    with pytest.raises(IntegrityError, match="visit_no_double_booking"), transaction.atomic():
        f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10, 15))
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10, 15), status="cancelled")  # cancelled: allowed
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10, 30))  # touching, not overlapping
