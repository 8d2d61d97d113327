"""On a 360 px phone: "Remind me" under the doctor's message, pick a time, back in the chat, then the reminder in the list.

Served by Daphne (the `live_asgi` fixture) so the chat page runs with its socket, as in production.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import Thread
from messaging.services import send_message
from notifications.models import PersonalReminder
from tests import factories as f
from tests.browser.conftest import MOBILE, fits_the_screen, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, E164 = "+7 916 123-45-67", "+79161234567"
ADVICE = "Take ibuprofen 400 mg after meals if the tooth aches, no more than three times a day. Come back if it still hurts on Monday."


@pytest.fixture
def doctor_thread(live_asgi):
    """Anna's conversation with Dr Maria Ivanova of Smile Dental: her question, the doctor's advice."""
    clinic = f.ClinicFactory(slug="smile", name="Smile Dental", time_zone="Asia/Yekaterinburg")
    user = f.UserFactory(username="maria", first_name="Maria", is_staff=True)
    f.MembershipFactory(user=user, clinic=clinic, role="doctor")
    doctor = f.DoctorFactory(clinic=clinic, user=user, full_name="Maria Ivanova")
    anna = f.PatientFactory(phone=E164, full_name="Anna Petrova")
    thread = f.ThreadFactory(clinic=clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=doctor)

    def talk() -> None:  # where the server runs Django: what on_commit announces reaches the sockets from there
        with transaction.atomic():
            send_message(thread=thread, actor=anna.user, text="My tooth hurts after the filling. What can I take?")
            send_message(thread=thread, actor=user, text=ADVICE)

    live_asgi.call(talk)
    return thread


def _doctor_writes(thread: Thread, text: str) -> int:
    with transaction.atomic():
        message, _created = send_message(thread=thread, actor=thread.doctor.user, text=text)
    return message.seq


def test_remind_me_from_the_doctors_message_then_back_in_the_chat(phone, sms, live_asgi, doctor_thread):
    sign_in(phone, sms, phone=PHONE, e164=E164)
    phone.goto(f"/portal/threads/{doctor_thread.pk}/")
    expect(phone.get_by_role("heading", name="Maria Ivanova", level=1)).to_be_visible()
    expect(phone.get_by_role("link", name="Set a reminder")).to_be_visible()
    own = phone.locator(".msg.mine")
    expect(own.get_by_role("link", name="Remind me")).to_have_count(0)  # not under her own words
    advice = phone.locator(".msg.theirs", has_text="Take ibuprofen")
    remind = advice.get_by_role("link", name="Remind me")
    expect(remind).to_be_visible()
    box = remind.bounding_box()
    assert box["height"] >= 24 and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"]
    screenshot(phone, "reminder-1-thread", full_page=False)

    remind.click()
    expect(phone.get_by_role("heading", name="New reminder", level=1)).to_be_visible()
    form = phone.locator("#new-reminder")
    expect(form.get_by_label("What to remind about")).to_have_value(ADVICE)  # 127 characters: whole
    expect(form.get_by_label("Clinic")).to_have_value(str(doctor_thread.clinic_id))
    expect(form.get_by_label("For whom")).to_have_value(str(doctor_thread.patient_id))
    tomorrow = timezone.localtime(timezone.now(), doctor_thread.clinic.tz).date() + timedelta(days=1)
    expect(form.get_by_label("Day")).to_have_value(tomorrow.isoformat())
    form.get_by_label("Time").fill("20:00")
    fits_the_screen(phone)
    screenshot(phone, "reminder-2-form")

    form.get_by_role("button", name="Remind me").click()
    expect(phone.get_by_role("heading", name="Maria Ivanova", level=1)).to_be_visible()
    expect(phone.get_by_text(f"Reminder set for {tomorrow.day} {tomorrow:%B}, 20:00.")).to_be_visible()
    assert phone.url.endswith(f"/portal/threads/{doctor_thread.pk}/#latest")
    screenshot(phone, "reminder-3-back-in-thread", full_page=False)

    # A message arriving live (drawn by chat.js, not the server) gets the same action.
    phone.wait_for_function("() => window.ClinicChat !== undefined")
    later = live_asgi.call(_doctor_writes, doctor_thread, "Rinse with warm salt water tonight.")
    live = phone.locator(".msg.theirs", has_text="Rinse with warm salt water").get_by_role("link", name="Remind me")
    expect(live).to_have_attribute("href", f"/portal/notifications/reminders/new/?thread={doctor_thread.pk}&message={later}")

    phone.get_by_role("link", name="Profile", exact=True).click()
    phone.get_by_role("link", name="Notifications and reminders").click()
    reminders = phone.locator("#reminders")
    expect(reminders).to_contain_text("Take ibuprofen 400 mg after meals")
    expect(reminders).to_contain_text(f"{tomorrow.day} {tomorrow:%B} {tomorrow.year}, 20:00 · Once")
    screenshot(phone, "reminder-4-listed")
    assert PersonalReminder.objects.get().patient_id == doctor_thread.patient_id
