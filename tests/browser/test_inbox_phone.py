"""The staff inbox on a doctor's phone (390 px) and booking from the chat, in Russian and English, over the real socket.

On a phone the inbox shows one pane at a time: the list, the conversation, the patient card, with
a way back from each (its own buttons and the browser's Back). Every step is checked for what a
thumb needs: nothing wider than the screen, tap targets of 44 px, the composer at the bottom.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from appointments import services as booking
from appointments.models import Visit
from messaging import services
from messaging.models import Message
from tests import factories as f
from tests.browser.conftest import DESKTOP, fits_the_screen, screenshot, staff_login
from tests.conftest import at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LOCALES = {"ru": "ru-RU", "en": "en-US"}
WORDS = {
    "ru": {"card": "Карточка", "no_visits": "Визитов пока нет.", "book": "Записать на приём", "offer": "Предложить время",
           "sent": "Время отправлено", "booked_flash": "Визит записан"},
    "en": {"card": "Card", "no_visits": "No visits yet.", "book": "Book a visit", "offer": "Offer times",
           "sent": "The times are sent", "booked_flash": "Visit booked:"},
}  # fmt: skip


@pytest.fixture
def clinic_chat(alpha, checkup, anna, live_asgi):
    """Anna wrote to Alpha after her visit; Dr Dima does a 30-minute check-up every day 09:00–18:00."""
    f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Pyotr Quiet", patient__phone="+79160000077")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    f.CannedAnswerFactory(
        clinic=alpha.clinic, shortcode="address", title="Our address", text="{patient_first_name}, we are at {clinic_address}."
    )
    live_asgi.call(
        services.send_message, thread=thread, actor=anna.user, text="The tooth still aches a little after the filling. Is it normal?"
    )
    return thread, checkup


def box(locator: Locator) -> dict:
    """The element's rectangle, measured in the page in one step (live refreshes replace nodes between two calls)."""
    return locator.evaluate("e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; }")


def thumb_sized(*locators: Locator) -> None:
    for locator in locators:
        expect(locator).to_be_visible()
        rect = box(locator)
        assert rect["height"] >= 44 and rect["width"] >= 44, f"{locator} is {rect['width']}×{rect['height']} px"
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE["width"], f"{locator} leaves the screen: {rect}"


def only_pane(page: Page, visible: str) -> None:
    for pane in (".inbox-left", ".inbox-middle", ".inbox-right"):
        if pane == visible:
            expect(page.locator(pane)).to_be_visible()
        else:
            expect(page.locator(pane)).to_be_hidden()
    rect = box(page.locator(visible))
    assert rect["width"] >= PHONE["width"] - 2, f"{visible} is squeezed: {rect}"


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_doctor_answers_from_a_phone(open_live, live_asgi, alpha, clinic_chat, lang):
    thread, service = clinic_chat
    words = WORDS[lang]
    page = open_live(locale=LOCALES[lang], viewport=PHONE)
    staff_login(page, "olga")
    page.goto("/admin/inbox/")

    # The list alone, full width; Unfold's sidebar stays folded away.
    row = page.locator(f'.inbox-row[data-thread="{thread.pk}"]')
    expect(row).to_contain_text("Anna Petrova")
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    only_pane(page, ".inbox-left")
    assert box(row)["height"] >= 44
    thumb_sized(page.locator(".inbox-scope").first)
    fits_the_screen(page)
    screenshot(page, f"inbox-phone-{lang}-1-list", full_page=False)

    # The conversation alone, the composer at the bottom of the screen.
    row.click()
    expect(page.locator("#inbox-conn")).to_have_attribute("data-state", "online")
    only_pane(page, ".inbox-middle")
    expect(page.locator(".msg--patient", has_text="still aches")).to_be_visible()
    composer = page.locator("#inbox-composer")
    bottom = box(composer)
    assert PHONE["height"] - 4 <= bottom["y"] + bottom["height"] <= PHONE["height"] + 1, bottom
    send, note, attach, offer = (
        page.locator("#inbox-send"),
        page.locator(".inbox-note-toggle"),
        page.locator(".inbox-attach"),
        page.locator("#inbox-offer-open"),
    )
    thumb_sized(
        send,
        note,
        attach,
        offer,
        page.locator("#inbox-canned"),
        page.locator("#inbox-text"),
        page.locator("[data-inbox-back=list]"),
        page.locator("[data-inbox-view=card]"),
    )
    fits_the_screen(page)
    screenshot(page, f"inbox-phone-{lang}-2-thread", full_page=False)

    # An answer, a canned answer by its shortcode (tapped in the list), a private note.
    text = page.locator("#inbox-text")
    text.fill("A little ache for two or three days is normal. Rinse with warm salt water.")
    send.click()
    expect(page.locator(".msg--staff:not(.is-pending)", has_text="warm salt water")).to_be_visible()
    text.fill("/addr")
    suggestion = page.locator("#inbox-suggest li[data-index]").first
    expect(suggestion).to_contain_text("/address")
    assert box(suggestion)["height"] >= 44
    suggestion.click()
    expect(text).to_have_value(re.compile(r"^Anna, we are at "))
    send.click()
    expect(page.locator(".msg--staff:not(.is-pending)", has_text="we are at")).to_be_visible()
    note.click()
    expect(page.locator("#inbox-note")).to_be_checked()
    text.fill("Check her again on Friday")
    send.click()
    expect(page.locator(".msg--note:not(.is-pending)", has_text="Check her again on Friday")).to_be_visible()
    note.click()
    assert Message.objects.filter(thread=thread, author="staff", kind="note", text="Check her again on Friday").exists()
    fits_the_screen(page)

    # Times offered without leaving the chat: the panel, slots as buttons, two tapped, sent.
    offer.click()
    panel = page.locator("#inbox-offer")
    expect(panel).to_be_visible()
    expect(panel.locator("select[name=service]")).to_have_value(str(service.pk))  # the clinic's only service
    slots = panel.locator(".offer-slot")
    expect(slots.first).to_contain_text("Dr Dima")  # any doctor: each time says whose it is
    panel.locator("select[name=doctor]").select_option(str(alpha.doctor.pk))
    expect(panel.locator(".offer-slot small")).to_have_count(0)  # one doctor chosen: the times alone
    later = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=2)
    panel.locator("input[type=date]").fill(later.isoformat())
    panel.locator("input[type=date]").dispatch_event("change")
    expect(panel.locator(".offer-day").first).to_contain_text(f" {later.day} ")
    expect(slots.first).to_be_visible()
    thumb_sized(slots.first, slots.nth(1), panel.locator("button[name=send]"))
    slots.first.click()
    slots.nth(1).click()
    expect(panel.locator("input[name=slot]:checked")).to_have_count(2)
    fits_the_screen(page)
    screenshot(page, f"inbox-phone-{lang}-3-offer", full_page=False)
    panel.locator("button[name=send]").click()
    expect(panel).to_be_hidden()
    expect(page.locator("#inbox-composer-status")).to_contain_text(words["sent"])
    offered = Message.objects.filter(thread=thread).exclude(data={}).filter(data__has_key="slots").get()
    assert len(offered.data["slots"]) == 2
    expect(page.locator(f'.msg[data-seq="{offered.seq}"]')).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/admin/inbox/{thread.pk}/"))  # still in the conversation

    # The card alone, then back by the browser's Back and by the card's own button.
    page.locator("[data-inbox-view=card]").click()
    expect(page).to_have_url(re.compile(r"#card$"))
    only_pane(page, ".inbox-right")
    card = page.locator("#inbox-card")
    expect(card).to_contain_text("+7 916 000-00-01")
    expect(card).to_contain_text(words["no_visits"])
    book = card.get_by_role("link", name=words["book"])
    thumb_sized(book, page.locator("[data-inbox-back=thread]"), page.locator("#card-assignee"))
    fits_the_screen(page)
    screenshot(page, f"inbox-phone-{lang}-4-card", full_page=False)
    page.go_back()
    only_pane(page, ".inbox-middle")
    page.locator("[data-inbox-view=card]").click()
    only_pane(page, ".inbox-right")
    page.locator("[data-inbox-back=thread]").click()
    only_pane(page, ".inbox-middle")
    expect(page).not_to_have_url(re.compile(r"#card$"))

    # The patient books one of the offered times: the card lists it without a reload.
    slot = offered.data["slots"][0]
    live_asgi.call(
        booking.visit_book, actor=thread.patient.user, clinic=alpha.clinic, doctor=alpha.doctor, service=service,
        patient=thread.patient, starts_at=datetime.fromisoformat(slot["starts_at"]), thread=thread,
    )  # fmt: skip
    expect(page.locator(".msg--system", has_text="Dr Dima").last).to_be_visible()  # the clinic's line about the visit
    page.locator("[data-inbox-view=card]").click()
    expect(card.locator(".card-small", has_text="Dr Dima")).to_be_visible()
    expect(card).not_to_contain_text(words["no_visits"])
    screenshot(page, f"inbox-phone-{lang}-5-card-after-booking", full_page=False)

    # Back to the list, with the conversation's new preview.
    page.locator("[data-inbox-back=thread]").click()
    page.locator("[data-inbox-back=list]").click()
    only_pane(page, ".inbox-left")
    expect(row).to_be_visible()
    fits_the_screen(page)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_card_refreshes_when_the_patient_books_and_the_badge_follows_new_messages(open_live, live_asgi, alpha, clinic_chat, lang):
    thread, service = clinic_chat
    words = WORDS[lang]
    page = open_live(locale=LOCALES[lang], viewport=DESKTOP)
    staff_login(page, "olga")
    page.goto(f"/admin/inbox/{thread.pk}/")
    expect(page.locator("#inbox-conn")).to_have_attribute("data-state", "online")
    card = page.locator("#inbox-card")
    expect(card).to_contain_text(words["no_visits"])
    inbox_link = page.locator("#nav-sidebar a[href='/admin/inbox/']")
    expect(inbox_link.locator(":scope > span")).to_have_count(2)  # icon and title: opening Anna's thread read the only unread one
    fits_the_screen(page)

    # The patient books in the portal (the same service the portal calls), in this conversation.
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=3)
    live_asgi.call(
        booking.visit_book, actor=thread.patient.user, clinic=alpha.clinic, doctor=alpha.doctor, service=service,
        patient=thread.patient, starts_at=at(alpha.clinic, day, 11), thread=thread,
    )  # fmt: skip
    visit_line = card.locator(".card-small", has_text="Dr Dima")
    expect(visit_line).to_contain_text("11:00")
    expect(card).not_to_contain_text(words["no_visits"])
    screenshot(page, f"inbox-desktop-{lang}-card-after-booking", full_page=False)

    # A new patient message elsewhere: the sidebar badge counts it without a reload.
    other = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Vera Newcomer", patient__phone="+79160000055")
    live_asgi.call(services.send_message, thread=other, actor=other.patient.user, text="Hello, do you work on Sundays?")
    expect(page.locator(f'.inbox-row[data-thread="{other.pk}"]')).to_be_visible()
    expect(inbox_link.locator(":scope > span").nth(2)).to_have_text("1")

    # The "Book a visit" button: the patient and the clinic chosen, back to the conversation after booking.
    card.get_by_role("link", name=words["book"]).click()
    expect(page.locator("#booking-patient")).to_have_value(str(thread.patient_id))
    page.locator("#booking-doctor").select_option(str(alpha.doctor.pk))
    expect(page.locator("#booking-service")).to_have_value(str(service.pk))
    page.locator("#booking-date").fill((day + timedelta(days=1)).isoformat())
    page.locator("#booking-date").dispatch_event("change")
    expect(page.locator("#booking-time option").first).to_have_attribute("value", re.compile(r"T09:00"))
    screenshot(page, f"inbox-desktop-{lang}-book-from-card", full_page=False)
    page.locator("button[name=book]").click()
    expect(page).to_have_url(re.compile(rf"/admin/inbox/{thread.pk}/$"))
    visit = Visit.objects.filter(patient=thread.patient).order_by("-pk").first()
    assert visit.thread_id == thread.pk and visit.created_by == alpha.operator
    flash = page.get_by_text(re.compile(re.escape(words["booked_flash"]) + ".*Anna Petrova"))
    expect(flash).to_have_count(1)  # the success message once: Unfold's, not again on the card
    expect(card.locator("a[href*='/calendar/visit/']")).to_have_count(2)
    screenshot(page, f"inbox-desktop-{lang}-back-after-booking", full_page=False)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_badge_is_live_on_other_admin_pages(open_live, live_asgi, alpha, clinic_chat, lang):
    thread, _service = clinic_chat
    page = open_live(locale=LOCALES[lang], viewport=DESKTOP)
    staff_login(page, "olga")
    page.goto("/admin/calendar/")
    badge = page.locator("#nav-sidebar a[href='/admin/inbox/'] > span").nth(2)
    expect(badge).to_have_text("1")
    other = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Vera Newcomer", patient__phone="+79160000055")
    live_asgi.call(services.send_message, thread=other, actor=other.patient.user, text="Hello, do you work on Sundays?")
    expect(badge).to_have_text("2")
    live_asgi.call(services.thread_mark_read, thread=thread, actor=alpha.operator)
    live_asgi.call(services.thread_mark_read, thread=other, actor=alpha.operator)
    expect(page.locator("#nav-sidebar a[href='/admin/inbox/'] > span")).to_have_count(2)  # icon and title: no badge at zero
    screenshot(page, f"admin-badge-{lang}-calendar", full_page=False)
