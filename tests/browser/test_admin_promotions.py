"""A clinic's manager writes a promotion, sees whom it would reach, launches it, and follows its SMS to the provider's report."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications import services as outbox
from notifications.models import Delivery, Preference
from tests import factories as f
from tests.browser.conftest import menu_item, screenshot, staff_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def contacts(alpha, beta):
    """Alpha's contacts: Vera, Gleb and Tina tagged 'implants' (Tina turned promotions off), Dina untagged; Boris is Beta's."""
    implants = f.TagFactory(clinic=alpha.clinic, name="implants")
    f.TagFactory(clinic=alpha.clinic, name="children")
    for name, phone, email, tagged in (
        ("Vera Volkova", "+79160003001", "vera@example.ru", True),
        ("Gleb Gromov", "+79160003002", None, True),
        ("Tina Titova", "+79160003003", None, True),
        ("Dina Dronova", "+79160003004", None, False),
    ):
        patient = f.PatientFactory(full_name=name, phone=phone, email=email)
        thread = f.ThreadFactory(clinic=alpha.clinic, patient=patient)
        if tagged:
            thread.contact.tags.add(implants)
        if name.startswith("Tina"):
            Preference.objects.create(user=patient.user, promotions=False)
    f.ThreadFactory(clinic=beta.clinic, patient=f.PatientFactory(full_name="Boris Betov", phone="+79160003005"))


def _figure(page: Page, name: str):
    return page.locator(f'#promotion-reach [data-figure="{name}"]')


def _channel_row(page: Page, channel: str):
    return page.locator("#reach-by-channel tbody tr").filter(has=page.get_by_role("rowheader", name=channel, exact=True))


def test_manager_creates_launches_and_follows_a_promotion(admin_page, alpha, contacts, smsru):
    page = admin_page
    staff_login(page, "mark")
    menu_item(page, "Promotions").click()
    page.get_by_role("link", name=re.compile("Add promotion")).click()

    today = timezone.localtime(timezone.now(), alpha.clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    page.get_by_label("Clinic").select_option(label="Alpha Dental")
    page.get_by_label("Title").fill("Implants −20%")
    page.get_by_label("Text").fill("All month: implants with a 20% discount. Book online or call us.")
    page.get_by_label("Valid from").fill(today.isoformat())
    page.get_by_label("Valid until").fill((today + timedelta(days=30)).isoformat())
    page.get_by_label("Only contacts with these tags").select_option(label="implants")
    page.get_by_label("Also by SMS").check()
    page.get_by_role("button", name="Save and continue editing").click()

    audience = page.locator("#promotion-audience")
    expect(audience).to_contain_text("Would reach 3 people.")
    expect(audience.locator('[data-channel="sms"]')).to_have_text("2 of them can get an SMS")  # Tina turned promotions off
    expect(audience.locator('[data-channel="email"]')).to_have_text("1 of them can get an e-mail — e-mail not ticked")
    audience.scroll_into_view_if_needed()
    screenshot(page, "promo-admin-1-audience", full_page=False)

    page.get_by_role("link", name="Launch").click()  # the promotion page's button asks first
    confirm = page.locator("#launch-confirm")
    expect(confirm).to_contain_text("Launch the promotion?")
    expect(confirm).to_contain_text("Would reach 3 people.")
    screenshot(page, "promo-admin-2-confirm", full_page=False)
    confirm.get_by_role("button", name="Launch now").click()
    expect(page.get_by_text("Implants −20%: 3 people reached.")).to_be_visible()
    screenshot(page, "promo-admin-2-launched", full_page=False)
    menu_item(page, "Promotions").click()

    # The beat's work, in this process: tomorrow at noon the SMS go out; the provider then reports one delivered.
    noon = datetime.combine(today + timedelta(days=1), time(12), tzinfo=alpha.clinic.tz)
    outbox.notifications_dispatch_due(now=noon)
    assert Delivery.objects.filter(channel="sms", status="sent").count() == 2 and len(smsru.calls) == 2
    vera_sms = Delivery.objects.get(destination="+79160003001")
    outbox.delivery_report(provider=vera_sms.provider, provider_message_id=vera_sms.provider_message_id, delivered=True)

    page.get_by_role("link", name="Implants −20%").click()
    expect(_figure(page, "reached")).to_have_text("3")
    expect(_figure(page, "opened")).to_have_text("0 (0 %)")
    expect(_figure(page, "booked_after")).to_have_text("0 (0 %)")
    expect(_channel_row(page, "SMS").locator("td")).to_have_text(["0", "2", "1", "0"])  # queued, sent, delivered, failed
    expect(_channel_row(page, "E-mail").locator("td")).to_have_text(["0", "0", "0", "0"])
    page.locator("#promotion-reach").scroll_into_view_if_needed()
    screenshot(page, "promo-admin-3-reach", full_page=False)

    menu_item(page, "Notifications").click()
    page.locator('[x-on\\:click="filterOpen = true"]').click()  # the "Filters" toggle (a link without href)
    page.locator("#changelist-filter").get_by_role("link", name="Promotion", exact=True).click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="Dina")).to_have_count(0)
    expect(rows.filter(has_text="Tina Titova")).to_contain_text("The person opted out")
    screenshot(page, "promo-admin-4-notifications", full_page=False)

    rows.filter(has_text="Vera Volkova").get_by_role("link").first.click()
    expect(page.get_by_text("Attempt history")).to_be_visible()
    history = page.locator("#attempt-history")
    expect(history).to_contain_text("SMS → +79160003001")
    expect(history).to_contain_text("Accepted by the provider")
    history.scroll_into_view_if_needed()
    screenshot(page, "promo-admin-5-attempts", full_page=False)
    deliveries = page.locator("#deliveries-group")
    deliveries.scroll_into_view_if_needed()
    expect(deliveries).to_contain_text("+79160003001")
    expect(deliveries).to_contain_text("Delivered")
    screenshot(page, "promo-admin-6-deliveries", full_page=False)
