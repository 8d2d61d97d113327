"""Times offered in the chat: the patient's payload carries them, the thread page renders them as buttons, a tap books."""

from __future__ import annotations

import pytest

from appointments import services
from appointments.models import Appointment, SlotOffer
from messaging.models import Message
from messaging.payloads import message_payload
from tests import factories as f
from tests.appointments.conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposal(alpha, checkup, anna, day):
    thread = anna.threads.get()
    return services.slots_propose(
        actor=alpha.operator,
        thread=thread,
        slots=[(alpha.doctor, checkup, at(alpha.clinic, day, 10)), (alpha.doctor, checkup, at(alpha.clinic, day, 11))],
    )


def test_both_audiences_get_the_offered_slots(proposal, alpha, checkup, day):
    for audience in ("patient", "staff"):
        body = message_payload(proposal, audience=audience)
        assert [s["starts_at"] for s in body["slots"]] == [at(alpha.clinic, day, h).isoformat() for h in (10, 11)]
        assert body["slots"][0]["service"] == checkup.pk and body["offer"] is None
    assert "data" not in message_payload(proposal, audience="patient")  # the rest of data stays staff-only
    assert message_payload(proposal, audience="patient")["slots"]


def test_the_thread_page_renders_one_button_per_slot_linking_to_the_confirm_page(web, proposal, anna, alpha, checkup, day):
    web.force_login(anna.user)
    page = web.get(f"/portal/threads/{proposal.thread_id}/").content.decode()
    assert page.count('class="offer-slot"') == 2
    assert (
        f"/portal/book/alpha/confirm/?service={checkup.pk}&amp;doctor={alpha.doctor.pk}&amp;at={day.isoformat()}T10%3A00&amp;for={anna.pk}"
        in page
    )


def test_a_freed_slot_offer_reaches_the_waiting_patient_with_its_id_and_books_once(api, alpha, checkup, anna, day):
    f.WaitlistEntryFactory(doctor=alpha.doctor, service=checkup, patient=anna)
    other = f.PatientFactory()
    f.ThreadFactory(clinic=alpha.clinic, patient=other)
    freed = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=other, starts_at=at(alpha.clinic, day, 9))
    Appointment.objects.filter(pk=freed.pk).update(status=Appointment.Status.CANCELLED)
    offer = services.slot_offer_create(visit_id=freed.pk)
    message = Message.objects.filter(thread__patient=anna, data__offer=offer.pk).get()
    body = message_payload(message, audience="patient")
    assert body["offer"] == offer.pk and len(body["slots"]) == 1

    api.force_authenticate(anna.user)
    slot = body["slots"][0]
    request = {
        "doctor": slot["doctor"],
        "service": slot["service"],
        "starts_at": slot["starts_at"],
        "thread": message.thread_id,
        "offer": offer.pk,
        "patient": anna.pk,
    }
    booked = api.post("/api/visits/", request, format="json")
    assert booked.status_code == 201, booked.json()
    assert SlotOffer.objects.get().status == "taken"
    assert Message.objects.filter(thread=message.thread, text__startswith="Visit booked").exists()

    again = api.post("/api/visits/", request, format="json")
    assert again.status_code == 409 and again.json()["alternatives"]
