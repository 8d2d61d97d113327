"""A patient sees a clinic's promotion highlighted, opens it, then sets her channels and a reminder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from promotions.models import Promotion
from promotions.services import promotion_launch
from tests import factories as f
from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, E164 = "+7 916 000-00-01", "+79160000001"  # Anna's (tests/conftest.py)


@pytest.fixture
def promoted_to(anna):
    """Anna, a patient of Smile Dental and Aurora Clinic, while Smile runs a promotion."""
    clinic = f.ClinicFactory(slug="smile", name="Smile Dental")
    other = f.ClinicFactory(slug="aurora", name="Aurora Clinic")
    for each in (other, clinic):
        f.ThreadFactory(clinic=each, patient=anna)
    manager = f.UserFactory(username="smile-manager", is_staff=True)
    f.MembershipFactory(user=manager, clinic=clinic, role="manager")
    today = timezone.localtime(timezone.now(), clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    promotion = Promotion.objects.create(
        clinic=clinic, title="Whitening −30%", text="All of December, with any of our hygienists.",
        valid_from=today, valid_until=today + timedelta(days=30),
    )  # fmt: skip
    promotion_launch(actor=manager, promotion=promotion)
    return anna


def test_promotion_highlight_until_opened_then_preferences_and_a_reminder(page, sms, promoted_to):
    sign_in(page, sms, phone=PHONE, e164=E164)
    cards = page.locator("#my-clinics > li")
    expect(cards.first).to_have_class("card clinic-card has-promotion")
    expect(cards.first.get_by_role("link", name="★ Whitening −30%")).to_be_visible()
    screenshot(page, "promo-1-highlighted")

    cards.first.get_by_role("link", name="★ Whitening −30%").click()
    expect(page.get_by_role("heading", name="Whitening −30%")).to_be_visible()
    expect(page.get_by_text("All of December, with any of our hygienists.")).to_be_visible()
    screenshot(page, "promo-2-opened")
    page.get_by_role("link", name="My clinics", exact=True).click()
    expect(page.locator(".has-promotion")).to_have_count(0)

    page.get_by_role("link", name="Profile", exact=True).click()
    page.get_by_role("link", name="Notifications and reminders").click()
    expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
    page.get_by_label("Clinics' promotions").uncheck()
    page.locator("#preferences").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_label("Clinics' promotions")).not_to_be_checked()

    smile = Promotion.objects.get().clinic
    tomorrow = (timezone.localtime(timezone.now(), smile.tz).date() + timedelta(days=1)).isoformat()  # the clinic's tomorrow
    form = page.locator("#new-reminder")
    form.get_by_label("What to remind about").fill("Rinse with chlorhexidine")
    form.get_by_label("Clinic").select_option(label="Smile Dental")
    form.get_by_label("Day").fill(tomorrow)
    form.get_by_label("Time").fill("20:00")
    form.get_by_label("Repeat").select_option(label="Every day")
    form.get_by_role("button", name="Remind me").click()
    expect(page.get_by_text("Reminder set.")).to_be_visible()
    expect(page.locator("#reminders")).to_contain_text("Rinse with chlorhexidine")
    screenshot(page, "promo-3-preferences-and-reminder")
