"""The front desk in the booking calendar: book from a free slot, mark a no-show, read attendance."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from appointments.models import Visit
from tests import factories as f
from tests.browser.conftest import menu_item, screenshot, staff_login
from tests.conftest import at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clinic_day(alpha):
    """Dima (check-up, 30 min) works 09:00–18:00 every day; Anna is a contact; yesterday's visit awaits its outcome."""
    service = f.ServiceFactory(clinic=alpha.clinic, name="Check-up", duration_minutes=30)
    alpha.doctor.services.add(service)
    second = f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Second")
    second.services.add(service)
    for doctor in (alpha.doctor, second):
        for weekday in range(7):
            f.ScheduleRuleFactory(doctor=doctor, weekday=weekday, starts=time(9), ends=time(18))
    anna = f.PatientFactory(full_name="Anna Petrova", phone="+79160000001")
    f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    ivan = f.PatientFactory(full_name="Ivan Late", phone="+79160000002")
    f.ThreadFactory(clinic=alpha.clinic, patient=ivan)
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=2)
    f.VisitFactory(doctor=second, service=service, patient=ivan, starts_at=at(alpha.clinic, day, 10), status=Visit.Status.CONFIRMED)
    f.VisitFactory(doctor=alpha.doctor, service=service, patient=ivan, starts_at=at(alpha.clinic, day, 12), status=Visit.Status.CANCELLED)
    past = f.VisitFactory(doctor=alpha.doctor, service=service, patient=ivan, starts_at=timezone.now() - timedelta(days=1))
    f.VisitFactory(
        doctor=alpha.doctor,
        service=service,
        patient=anna,
        starts_at=timezone.now() - timedelta(days=2),
        status=Visit.Status.COMPLETED,
    )
    return service, anna, day, past


def test_operator_books_marks_a_no_show_and_owner_reads_attendance(admin_page, open_page, alpha, clinic_day):
    service, anna, day, past = clinic_day
    page = admin_page
    staff_login(page, "olga")
    menu_item(page, "Calendar").click()
    expect(page.locator(".booking-title")).to_contain_text(re.compile(r"\d{4}"))
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Date").dispatch_event("change")
    expect(page.locator(".booking-visit.is-confirmed")).to_contain_text("Ivan Late")
    screenshot(page, "calendar-1-day", full_page=False)

    # A free slot of Dima at 11:00 opens the booking form with doctor, date and time chosen.
    page.locator(f'.booking-col[data-doctor="{alpha.doctor.pk}"] a.booking-free', has_text="11:00").click()
    expect(page.get_by_role("heading", name="New visit", level=2)).to_be_visible()
    page.get_by_placeholder("Name or phone of a contact").fill("Petrova")
    page.get_by_role("button", name="Find").click()
    page.locator("#booking-patient").select_option(value=str(anna.pk))
    expect(page.locator("#booking-time")).to_have_value(re.compile(r"T11:00:00\+03:00$"))
    screenshot(page, "calendar-2-new-visit", full_page=False)
    page.get_by_role("button", name="Book the visit").click()
    expect(page.get_by_text("Visit booked: ").first).to_be_visible()
    expect(page.locator(".booking-visit.is-booked", has_text="Anna Petrova")).to_contain_text("11:00–11:30")
    screenshot(page, "calendar-3-booked", full_page=False)
    assert Visit.objects.get(patient=anna, status="booked").doctor == alpha.doctor

    # Yesterday's visit: the patient did not come.
    page.goto(f"/admin/calendar/visit/{past.pk}/")
    page.get_by_role("button", name="No-show").click()
    expect(page.get_by_text("Marked: No-show").first).to_be_visible()
    expect(page.locator(".booking-status")).to_have_text("No-show")
    screenshot(page, "calendar-4-no-show", full_page=False)
    assert Visit.objects.get(pk=past.pk).status == Visit.Status.NO_SHOW

    page.goto(f"/admin/calendar/week/?doctor={alpha.doctor.pk}&date={day.isoformat()}")
    expect(page.locator(".booking-col")).to_have_count(7)
    screenshot(page, "calendar-5-week", full_page=False)

    # The operator has no attendance; the owner has.
    assert page.goto("/admin/calendar/attendance/").status == 403
    owner = open_page(viewport=page.viewport_size)
    staff_login(owner, "alice")
    expect(owner).to_have_url(re.compile(r"/admin/calendar/attendance/$"))  # an owner starts at attendance
    table = owner.locator("#attendance")
    expect(table.locator("tbody tr", has_text="Dr Dima")).to_contain_text("50 %")  # came 1, no-show 1
    expect(table.locator("tfoot")).to_contain_text("Total")
    screenshot(owner, "calendar-6-attendance", full_page=False)


def test_inbox_card_shows_visits_and_offer_times_sends_them(admin_page, alpha, clinic_day):
    service, anna, day, past = clinic_day
    page = admin_page
    staff_login(page, "olga")
    thread = anna.threads.get()
    page.goto(f"/admin/inbox/{thread.pk}/")
    card = page.locator("#inbox-card")
    expect(card.get_by_text("Completed").or_(card.get_by_text("Came")).first).to_be_visible()
    screenshot(page, "calendar-7-inbox-card", full_page=False)
    page.get_by_role("link", name=re.compile("Offer times")).click()
    page.get_by_label("Service").select_option(label="Check-up")
    boxes = page.locator('input[name="slot"]')
    expect(boxes.first).to_be_visible()
    for i in range(3):
        boxes.nth(i).check()
    screenshot(page, "calendar-8-offer-times", full_page=False)
    page.get_by_role("button", name="Send to the patient").click()
    expect(page.get_by_text("The times are sent").first).to_be_visible()
    assert len(thread.messages.exclude(data={}).get().data["slots"]) == 3
