"""Booking on a 360 px phone: from the clinic page to a booked visit in four taps, then cancelling it;
and one-tap booking of times an operator offers in the chat, seen live by both sides."""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from appointments.models import Visit
from tests import factories as f
from tests.browser.conftest import DESKTOP, MOBILE, enter_code, fits_the_screen, request_code, screenshot, sign_in, staff_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, E164 = "+7 916 123-45-67", "+79161234567"


@pytest.fixture
def clinic_world(alpha):
    """Alpha Dental (Moscow): Dr Dima does a 1500 RUB check-up every day 09:00–18:00; Anna is its consenting patient."""
    alpha.clinic.address = "Moscow, Tverskaya 1"
    alpha.clinic.save()
    dentistry = f.SpecialtyFactory(clinic=alpha.clinic, name="Dentistry")
    checkup = f.ServiceFactory(clinic=alpha.clinic, name="Check-up", duration_minutes=30, price_rub=1500, specialty=dentistry)
    alpha.doctor.services.add(checkup)
    for weekday in range(7):
        f.ScheduleRuleFactory(doctor=alpha.doctor, weekday=weekday, starts=time(9), ends=time(18))
    anna = f.PatientFactory(phone=E164, full_name="Anna Petrova")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    return type("World", (), {"alpha": alpha, "checkup": checkup, "anna": anna, "thread": thread})


def test_patient_books_in_four_taps_then_cancels(page, sms, clinic_world):
    alpha = clinic_world.alpha
    page.goto("/c/alpha/")
    screenshot(page, "booking-1-clinic")

    page.get_by_role("link", name="Book a visit").click()  # tap 1
    expect(page.get_by_role("heading", name="Book a visit")).to_be_visible()
    expect(page.get_by_text("Dentistry")).to_be_visible()
    fits_the_screen(page)
    screenshot(page, "booking-2-services")

    page.get_by_role("link", name=re.compile("Check-up")).click()  # tap 2
    chosen = page.locator(".day-strip .day.is-chosen")
    expect(chosen).to_have_count(1)
    expect(page.locator(".doctor-slots h3")).to_have_text("Dr Dima")
    fits_the_screen(page)
    screenshot(page, "booking-3-slots")

    # Another day: only the slots block is swapped (htmx), the page stays.
    page.evaluate("() => { window.__samePage = true; }")
    target_day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=3)
    page.locator(f'.day-strip .day[data-day="{target_day.isoformat()}"]').click()
    expect(page.locator(f'.day-strip .day.is-chosen[data-day="{target_day.isoformat()}"]')).to_be_visible()
    assert page.evaluate("() => window.__samePage") is True
    assert f"day={target_day.isoformat()}" in page.url
    screenshot(page, "booking-4-another-day")

    page.get_by_role("link", name="10:00", exact=True).click()  # tap 3
    # Not signed in yet: the code flow, then straight back to the chosen time.
    request_code(page, PHONE)
    enter_code(page, sms, E164)
    expect(page.get_by_role("heading", name="Confirm the visit")).to_be_visible()
    for text in ("Check-up", "Dr Dima", "10:00", "Tverskaya 1", "1500 RUB", "Anna Petrova"):
        expect(page.locator(".visit-summary")).to_contain_text(text)
    fits_the_screen(page)
    screenshot(page, "booking-5-confirm")

    page.get_by_role("button", name="Book", exact=True).click()  # tap 4
    expect(page.get_by_text("Visit booked.")).to_be_visible()
    expect(page.get_by_role("link", name="Add to calendar")).to_have_attribute("href", re.compile(r"/portal/visits/\d+/calendar\.ics$"))
    fits_the_screen(page)
    screenshot(page, "booking-6-booked")
    visit = Visit.objects.get()
    assert timezone.localtime(visit.starts_at, alpha.clinic.tz).replace(tzinfo=None) == datetime.combine(target_day, time(10))

    page.get_by_role("link", name="My visits").first.click()
    upcoming = page.locator("#upcoming-visits .visit-card")
    expect(upcoming).to_have_count(1)
    expect(upcoming).to_contain_text("Check-up · Dr Dima")
    fits_the_screen(page)
    screenshot(page, "booking-7-my-visits")

    upcoming.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Cancel the visit?")).to_be_visible()
    expect(page.locator("#cancel-terms")).to_contain_text("Free cancellation")
    screenshot(page, "booking-8-cancel-step")
    page.get_by_label("Reason (optional)").fill("Plans changed")
    page.get_by_role("button", name="Yes, cancel the visit").click()
    expect(page.get_by_text("Visit cancelled.")).to_be_visible()
    expect(page.locator("#upcoming-visits")).to_contain_text("No upcoming visits.")
    expect(page.locator("#past-visits .visit-card")).to_contain_text("Cancelled")
    fits_the_screen(page)
    screenshot(page, "booking-9-cancelled")
    visit.refresh_from_db()
    assert (visit.status, visit.cancel_reason, visit.cancelled_late) == ("cancelled", "Plans changed", False)


def test_operator_offers_times_and_the_patient_books_one_with_a_tap(open_live, live_asgi, sms, clinic_world):
    world = clinic_world
    alpha, thread = world.alpha, world.thread
    phone = open_live(viewport=MOBILE)
    sign_in(phone, sms, phone=PHONE, e164=E164)
    phone.goto(f"/portal/threads/{thread.pk}/")
    phone.wait_for_function("() => window.ClinicChat !== undefined")

    desk = open_live(viewport=DESKTOP)
    staff_login(desk, "olga")
    desk.goto(f"/admin/inbox/{thread.pk}/")
    expect(desk.locator("#inbox-conn")).to_have_text("Live")

    # Olga offers two times through the API (what the inbox's "Offer times" would call).
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=2)
    times = [f"{day.isoformat()}T{hour}:00:00+03:00" for hour in ("11", "15")]
    token = next(c["value"] for c in desk.context.cookies() if c["name"] == "csrftoken")
    response = desk.request.post(
        f"/api/threads/{thread.pk}/slots/",
        data=json.dumps({"slots": [{"doctor": alpha.doctor.pk, "service": world.checkup.pk, "starts_at": t} for t in times]}),
        headers={
            "Content-Type": "application/json",
            "X-CSRFToken": token,
            "Referer": live_asgi.url + "/admin/inbox/",
            "Accept-Language": "en",
        },
    )
    assert response.status == 201, response.text()

    offer = phone.locator("#bubbles .offer-slots:not(.offer-alternatives)")
    expect(offer.locator(".offer-slot")).to_have_count(2)
    expect(offer.locator(".offer-slot").first).to_contain_text("11:00")
    phone.evaluate("() => { window.__samePage = true; }")
    screenshot(phone, "chat-booking-1-offer", full_page=False)

    # Someone books 11:00 by phone a moment before her: the tap shows the nearest free times instead.
    live_asgi.call(
        Visit.objects.create,
        clinic=alpha.clinic, doctor=alpha.doctor, service=world.checkup, patient=f.PatientFactory(),
        starts_at=datetime.fromisoformat(times[0]), ends_at=datetime.fromisoformat(times[0]) + timedelta(minutes=30),
    )  # fmt: skip
    offer.locator(".offer-slot").first.click()
    expect(offer.locator(".offer-result")).to_contain_text("This time has just been taken")
    alternatives = phone.locator("#bubbles .offer-alternatives .offer-slot")
    expect(alternatives.first).to_be_visible()
    screenshot(phone, "chat-booking-2-taken", full_page=False)

    # 15:00 is still free: one tap books it; the confirmation arrives live on both screens.
    offer.locator(".offer-slot").nth(1).click()
    expect(offer.locator(".offer-result")).to_contain_text("Booked.")
    expect(phone.locator("#bubbles > li.msg", has_text="Visit booked:")).to_be_visible()
    expect(desk.locator("#inbox-messages", has_text="Visit booked:")).to_be_visible()
    assert phone.evaluate("() => window.__samePage") is True
    fits_the_screen(phone)
    screenshot(phone, "chat-booking-3-patient-booked", full_page=False)
    screenshot(desk, "chat-booking-4-operator-sees-it", full_page=False)
    visit = Visit.objects.get(patient=world.anna)
    assert (visit.source, visit.thread_id) == ("thread", thread.pk)
    assert visit.starts_at.astimezone(alpha.clinic.tz).hour == 15
