"""Two browsers at once: a patient on the portal (360 px phone) and an operator in the admin inbox (1280 px).

They write to each other both ways over the real socket (Daphne in the test process);
neither page reloads.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from messaging.models import Message, Thread
from tests import factories as f
from tests.browser.conftest import DESKTOP, MOBILE, fits_the_screen, screenshot, sign_in, staff_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, E164 = "+7 916 123-45-67", "+79161234567"


@pytest.fixture
def anna_thread(alpha):
    """Anna, a consenting patient of Alpha Dental, and her (still empty) clinic thread."""
    anna = f.PatientFactory(phone=E164, full_name="Anna Petrova")
    return f.ThreadFactory(clinic=alpha.clinic, patient=anna)


def same_page(page: Page) -> None:
    """Mark the document: the mark is gone if anything reloads the page."""
    page.evaluate("() => { window.__samePage = true; }")


def still_same_page(page: Page) -> None:
    assert page.evaluate("() => window.__samePage") is True


def test_patient_and_operator_chat_live_both_ways(open_live, alpha, anna_thread, sms):
    # The patient signs in on her phone and opens her chat with the clinic.
    phone = open_live(viewport=MOBILE)
    sign_in(phone, sms, phone=PHONE, e164=E164)
    phone.goto(f"/portal/threads/{anna_thread.pk}/")
    expect(phone.get_by_role("heading", name="Alpha Dental", level=1)).to_be_visible()
    phone.wait_for_function("() => window.ClinicChat !== undefined")

    # Olga opens the same conversation in the inbox on her desktop.
    desk = open_live(viewport=DESKTOP)
    staff_login(desk, "olga")
    desk.goto(f"/admin/inbox/{anna_thread.pk}/")
    expect(desk.locator("#inbox-conn")).to_have_text("Live")
    same_page(phone)
    same_page(desk)

    # Patient → operator: the message, and her typing before it.
    box = phone.get_by_role("textbox", name="Message")
    box.press_sequentially("Hello! Is Dr Dima ", delay=15)
    expect(desk.locator("#inbox-typing")).to_have_text("The patient is typing…")
    box.press_sequentially("working on Saturday?", delay=5)
    phone.get_by_role("button", name="Send").click()
    incoming = desk.locator(".msg.msg--patient", has_text="Is Dr Dima working on Saturday?")
    expect(incoming).to_be_visible()
    expect(incoming.locator(".msg-author")).to_have_text("Anna Petrova")
    row = desk.locator(f'.inbox-row[data-thread="{anna_thread.pk}"]')
    expect(row).to_contain_text("Is Dr Dima working on Saturday?")

    # Operator → patient: the reply arrives on the phone; her reading ticks it on the desk.
    composer = desk.get_by_label("Message", exact=True)
    composer.fill("Yes, from 9:00 to 15:00. Shall I book you in?")
    composer.press("Enter")
    reply = phone.locator("#bubbles > li.msg", has_text="Yes, from 9:00 to 15:00.")
    expect(reply).to_be_visible()
    expect(reply).to_have_class(re.compile(r"\btheirs\b"))
    sent = desk.locator(".msg.msg--staff:not(.is-pending)", has_text="Yes, from 9:00 to 15:00.")
    expect(sent.locator(".msg-receipt")).to_have_class(re.compile(r"\bis-read\b"))

    # And once more from the phone: order is kept on both sides.
    box.fill("Yes please, 10:00.")
    phone.get_by_role("button", name="Send").click()
    expect(desk.locator(".msg.msg--patient", has_text="Yes please, 10:00.")).to_be_visible()
    texts = [t.strip() for t in desk.locator("#inbox-messages .msg .msg-text").all_inner_texts()]
    assert texts == ["Hello! Is Dr Dima working on Saturday?", "Yes, from 9:00 to 15:00. Shall I book you in?", "Yes please, 10:00."]

    still_same_page(phone)
    still_same_page(desk)
    assert list(Message.objects.filter(thread=anna_thread).order_by("seq").values_list("author", flat=True)) == [
        "patient",
        "staff",
        "patient",
    ]
    # The open inbox marks her messages read as they arrive.
    deadline = time.monotonic() + 5
    while Thread.objects.get(pk=anna_thread.pk).staff_unread and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Thread.objects.get(pk=anna_thread.pk).staff_unread == 0
    fits_the_screen(phone)
    fits_the_screen(desk)
    screenshot(phone, "live-chat-1-patient", full_page=False)
    screenshot(desk, "live-chat-2-operator", full_page=False)
