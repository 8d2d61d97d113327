"""Times offered in the chat: the patient's payload carries them, the thread page renders them as buttons, a tap books."""

from __future__ import annotations

import pytest
import time_machine
from django.test import TestCase

from appointments import services
from appointments.models import SlotOffer, Visit
from messaging.models import Message
from messaging.payloads import message_payload
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposal(alpha, checkup, anna, anna_thread, day):
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


def test_the_thread_page_renders_one_button_per_slot_linking_to_the_confirm_page(web, proposal, anna, anna_thread, alpha, checkup, day):
    web.force_login(anna.user)
    page = web.get(f"/portal/threads/{proposal.thread_id}/").content.decode()
    assert page.count('class="offer-slot"') == 2
    assert (
        f"/portal/book/alpha/confirm/?service={checkup.pk}&amp;doctor={alpha.doctor.pk}&amp;at={day.isoformat()}T10%3A00&amp;for={anna.pk}"
        in page
    )


def test_a_freed_slot_offer_reaches_the_waiting_patient_with_its_id_and_books_once(api, alpha, checkup, anna, anna_thread, day):
    f.WaitlistEntryFactory(doctor=alpha.doctor, service=checkup, patient=anna)
    other = f.PatientFactory()
    f.ThreadFactory(clinic=alpha.clinic, patient=other)
    freed = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=other, starts_at=at(alpha.clinic, day, 9))
    Visit.objects.filter(pk=freed.pk).update(status=Visit.Status.CANCELLED)
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


def offer_box(page: str) -> str:
    return page.split('class="offer-slots')[1].split("</div>")[0]


def test_an_offer_is_closed_once_the_patient_books_and_says_why_after_a_reload(web, api, proposal, anna, anna_thread, alpha, checkup, day):
    web.force_login(anna.user)
    page = web.get(f"/portal/threads/{proposal.thread_id}/").content.decode()
    assert offer_box(page).count("href=") == 2 and "is-closed" not in page
    api.force_authenticate(anna.user)
    booking = {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": at(alpha.clinic, day, 10).isoformat(),
               "thread": proposal.thread_id, "patient": anna.pk}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert api.post("/api/visits/", booking, format="json").status_code == 201
    event = Message.objects.filter(thread_id=proposal.thread_id, data__visit_event="booked").get()
    assert message_payload(event, audience="patient")["visit_event"] == "booked"  # what closes the buttons live (chat.js)
    assert message_payload(proposal, audience="patient")["visit_event"] == ""
    box = offer_box(web.get(f"/portal/threads/{proposal.thread_id}/").content.decode())
    assert box.startswith(' is-closed"') and "href=" not in box and box.count('aria-disabled="true"') == 2
    assert "You booked a visit after these times were offered: they are closed." in box


def test_a_cancellation_closes_the_earlier_offer_and_a_new_offer_stays_open(web, proposal, anna, anna_thread, alpha, checkup, day):
    visit = services.visit_book(
        actor=alpha.operator, clinic=alpha.clinic, doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 15)
    )
    services.visit_cancel(actor=alpha.operator, visit=visit)
    fresh = services.slots_propose(actor=alpha.operator, thread=proposal.thread, slots=[(alpha.doctor, checkup, at(alpha.clinic, day, 12))])
    web.force_login(anna.user)
    page = web.get(f"/portal/threads/{proposal.thread_id}/").content.decode()
    old, new = page.split('class="offer-slots')[1:3]
    assert "is-closed" in old.split(">")[0] and "You booked a visit after" in old  # booked then cancelled: the first event closes it
    assert "is-closed" not in new.split(">")[0] and new.split("</div>")[0].count("href=") == 1
    assert fresh.data["slots"][0]["starts_at"] == at(alpha.clinic, day, 12).isoformat()


def test_times_that_passed_cannot_be_tapped(web, proposal, anna, anna_thread, alpha, day):
    web.force_login(anna.user)
    with time_machine.travel(at(alpha.clinic, day, 10, 30), tick=False):
        box = offer_box(web.get(f"/portal/threads/{proposal.thread_id}/").content.decode())
    assert box.count("href=") == 1  # 10:00 passed, 11:00 still bookable
    with time_machine.travel(at(alpha.clinic, day, 12), tick=False):
        box = offer_box(web.get(f"/portal/threads/{proposal.thread_id}/").content.decode())
    assert "href=" not in box and "These times have passed." in box


def test_a_bare_room_number_gets_its_label(web, alpha, checkup, anna, anna_thread, day):
    from appointments.models import room_label

    assert (room_label("101"), room_label("Рентген"), room_label("")) == ("room 101", "Рентген", "")
    alpha.doctor.schedule_rules.update(room="101")
    visit = services.visit_book(
        actor=anna.user, clinic=alpha.clinic, doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10)
    )
    web.force_login(anna.user)
    assert " · каб. 101</dd>" in web.get(f"/portal/visits/{visit.pk}/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Dr Dima, Check-up, room 101." in Message.objects.filter(data__visit_event="booked").get().text
