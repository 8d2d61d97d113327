"""A patient of two clinics in two zones: times they already hold elsewhere are not offered, refusals speak to them,
and every time they read carries its zone («13:00 (Yekaterinburg, UTC+5)»)."""

from __future__ import annotations

from datetime import time, timedelta
from urllib.parse import parse_qs

import pytest
from django.test import TestCase

from appointments import selectors, services
from appointments.models import Visit
from notifications.models import Notification
from tests import factories as f
from tests.conftest import at
from tests.notifications.conftest import reminder_tick

pytestmark = pytest.mark.django_db


@pytest.fixture
def therapy(beta):
    return f.bookable_service(beta.doctor, name="Therapy", ends=time(20))


@pytest.fixture
def ekb_visit(beta, therapy, anna, anna_thread, day):
    """Anna is also Beta's patient: a visit at 13:00 Yekaterinburg time, which is 11:00 in Moscow."""
    f.ThreadFactory(clinic=beta.clinic, patient=anna)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.visit_book(
            actor=anna.user, clinic=beta.clinic, doctor=beta.doctor, service=therapy, patient=anna, starts_at=at(beta.clinic, day, 13)
        )


def moscow_times(slots, clinic) -> list[str]:
    return [f"{s.starts_at.astimezone(clinic.tz):%H:%M}" for s in slots]


def test_free_slots_for_a_patient_leave_out_their_visit_in_another_clinic(alpha, checkup, anna, anna_thread, day, ekb_visit):
    everyone = moscow_times(selectors.free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup), alpha.clinic)
    for_anna = moscow_times(
        selectors.free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup, patient_id=anna.pk), alpha.clinic
    )
    assert "11:00" in everyone and "10:30" in everyone and "11:30" in everyone
    assert "11:00" not in for_anna
    assert "10:30" in for_anna and "11:30" in for_anna  # a visit that ends as hers starts, and one that starts as hers ends
    assert len(everyone) - len(for_anna) == 1


def test_a_cancelled_visit_elsewhere_frees_the_time_again(alpha, checkup, anna, anna_thread, day, ekb_visit):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.visit_cancel(actor=anna.user, visit=ekb_visit)
    slots = selectors.free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup, patient_id=anna.pk)
    assert "11:00" in moscow_times(slots, alpha.clinic)


def test_the_portal_day_and_the_public_api_do_not_offer_the_held_time_to_the_signed_in_patient(
    web, api, alpha, checkup, anna, anna_thread, day, ekb_visit
):
    web.force_login(anna.user)
    page = web.get(f"/c/alpha/book/{checkup.pk}/?day={day.isoformat()}").content.decode()
    assert ">10:30</a>" in page and ">11:30</a>" in page and ">11:00</a>" not in page
    url = f"/api/clinics/alpha/slots/?service={checkup.pk}&date_from={day.isoformat()}&days=1"
    anonymous = [s["starts_at"] for d in api.get(url).json()["days"] for s in d["slots"]]
    api.force_authenticate(anna.user)
    signed_in = [s["starts_at"] for d in api.get(url).json()["days"] for s in d["slots"]]
    assert at(alpha.clinic, day, 11).isoformat() in anonymous and at(alpha.clinic, day, 11).isoformat() not in signed_in


def test_the_patient_is_refused_in_the_second_person_with_their_visit_and_its_zone(web, alpha, checkup, anna, anna_thread, day, ekb_visit):
    web.force_login(anna.user)
    moment = at(alpha.clinic, day, 11)
    fields = {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{moment:%Y-%m-%dT%H:%M}", "for": anna.pk}
    response = web.post("/portal/book/alpha/confirm/", fields)
    assert response.status_code == 400
    page = response.content.decode()
    assert f"You already have a visit at this time: {day.day} " in page
    assert "13:00 (Yekaterinburg, UTC+5), Beta Health. Choose another time." in page
    assert "This person" not in page
    assert Visit.objects.filter(patient=anna).count() == 1


def test_staff_learn_only_that_the_person_is_busy(api, alpha, checkup, anna, anna_thread, day, ekb_visit):
    api.force_authenticate(alpha.operator)
    body = {"doctor": alpha.doctor.pk, "service": checkup.pk, "patient": anna.pk, "starts_at": at(alpha.clinic, day, 11).isoformat()}
    response = api.post("/api/visits/", body, format="json")
    assert response.status_code == 400
    text = str(response.json())
    assert "This person already has a visit at this time." in text and "Beta" not in text and "13:00" not in text


def test_times_offered_in_the_chat_leave_out_the_held_time_and_cannot_name_it(web, alpha, checkup, anna, anna_thread, day, ekb_visit):
    thread = anna.threads.get(clinic=alpha.clinic)
    alpha.doctor.schedule_rules.exclude(weekday=day.weekday()).delete()  # the first times offered are on `day`
    web.force_login(alpha.operator)
    page = web.get(f"/admin/calendar/offer/{thread.pk}/?service={checkup.pk}&doctor={alpha.doctor.pk}").content.decode()
    assert f"{alpha.doctor.pk}|{at(alpha.clinic, day, 11).isoformat()}" not in page
    assert f"{alpha.doctor.pk}|{at(alpha.clinic, day, 10).isoformat()}" in page
    with pytest.raises(Exception) as refused:
        services.slots_propose(actor=alpha.operator, thread=thread, slots=[(alpha.doctor, checkup, at(alpha.clinic, day, 11))])
    assert "The patient already has a visit at" in str(refused.value) and "Beta" not in str(refused.value)


def test_my_visits_and_the_visit_page_name_each_zone_for_a_patient_of_two_zones(web, alpha, checkup, anna, anna_thread, day, ekb_visit):
    moscow = services.visit_book(
        actor=anna.user, clinic=alpha.clinic, doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 15)
    )
    web.force_login(anna.user)
    page = web.get("/portal/visits/").content.decode()
    assert ', 13:00 <span class="visit-zone">(Yekaterinburg, UTC+5)</span>' in page
    assert ', 15:00 <span class="visit-zone">(Moscow, UTC+3)</span>' in page
    visit_page = web.get(f"/portal/visits/{ekb_visit.pk}/").content.decode()
    assert "clinic time (Yekaterinburg, UTC+5)" in visit_page
    assert "(Moscow, UTC+3)" in web.get(f"/portal/visits/{moscow.pk}/").content.decode()


def test_a_patient_of_one_zone_reads_plain_times(web, alpha, checkup, anna, anna_thread, day):
    services.visit_book(
        actor=anna.user, clinic=alpha.clinic, doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 15)
    )
    web.force_login(anna.user)
    page = web.get("/portal/visits/").content.decode()
    assert ", 15:00</span>" in page and "UTC+3" not in page


def test_the_reminder_sms_names_the_zone_for_a_patient_of_two_zones(alpha, beta, anna, anna_thread, ekb_visit, smsru):
    anna.phone = "+79160000001"
    anna.save()
    reminder_tick(ekb_visit.starts_at - timedelta(hours=1, minutes=59))
    texts = [parse_qs(call.request.content.decode())["msg"][0] for call in smsru.calls]
    # SMS go out in the clinic's language (Russian by default).
    assert any(t.startswith("Beta Health: ваш визит в 13:00 (Екатеринбург, UTC+5), Dr Dora.") for t in texts), texts
    assert Notification.objects.filter(visit=ekb_visit, kind="reminder").exists()


def test_the_chat_message_about_a_booking_names_the_zone(alpha, checkup, anna, anna_thread, day, ekb_visit):
    booked = ekb_visit.thread or anna.threads.get(clinic=ekb_visit.clinic)
    text = booked.messages.filter(data__visit_event="booked").get().text
    assert "13:00 (Yekaterinburg, UTC+5)" in text
