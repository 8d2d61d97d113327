"""A patient chats with their clinic on a 360 px phone: sending, live replies, reconnects, photos.

The pages are served by Daphne (the `live_asgi` fixture) so that the socket is real;
staff act server-side through messaging.services, the way the admin inbox does.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from messaging import realtime, services
from messaging.models import Attachment, Message, Thread
from tests import factories as f
from tests.browser.asgi_server import AsgiServer
from tests.browser.conftest import DESKTOP, fits_the_screen, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, E164 = "+7 916 123-45-67", "+79161234567"


@pytest.fixture
def world():
    """Smile Dental (Yekaterinburg time) with an operator, Anna its consenting patient, and her clinic thread."""
    clinic = f.ClinicFactory(slug="smile", name="Smile Dental", time_zone="Asia/Yekaterinburg")
    operator = f.UserFactory(username="olga", first_name="Olga", is_staff=True)
    f.MembershipFactory(user=operator, clinic=clinic, role="operator")
    anna = f.PatientFactory(phone=E164, full_name="Anna Petrova")
    thread = f.ThreadFactory(clinic=clinic, patient=anna)
    return type("World", (), {"clinic": clinic, "operator": operator, "anna": anna, "thread": thread})


def staff_sends(live_asgi: AsgiServer, world, text: str) -> None:
    """Olga replies from the inbox: send_message in a committed transaction, so on_commit announces it."""

    def send() -> None:
        with transaction.atomic():
            services.send_message(thread=Thread.objects.get(pk=world.thread.pk), actor=world.operator, text=text)

    live_asgi.call(send)


def open_clinic_chat(page: Page, sms) -> None:
    sign_in(page, sms, phone=PHONE, e164=E164)
    card = page.locator("#my-clinics > li").filter(has_text="Smile Dental")
    card.get_by_role("button", name="Write to the clinic").click()
    expect(page.get_by_role("heading", name="Smile Dental", level=1)).to_be_visible()
    # The socket is up once the page has said it holds the thread (the read marker is sent on open).
    page.wait_for_function("() => window.ClinicChat !== undefined")


def bubbles(page: Page):
    return page.locator("#bubbles > li.msg")


def wait_for_db(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the server never recorded it")
        time.sleep(0.05)


def test_patient_sends_a_message_and_sees_it_with_a_tick(phone, sms, live_asgi, world):
    open_clinic_chat(phone, sms)
    expect(phone.get_by_text("Ask your question: the clinic will answer here.")).to_be_visible()
    phone.get_by_role("textbox", name="Message").fill("Hello! Can I book a cleaning for Friday? Details: https://example.ru/price")
    phone.get_by_role("button", name="Send").click()

    mine = bubbles(phone).filter(has_text="Can I book a cleaning")
    expect(mine).to_have_count(1)
    expect(mine).to_have_class("msg mine")  # not "pending" any more: the server has it
    expect(mine.locator(".ticks.sent")).to_be_visible()
    expect(mine.locator(".ticks")).to_have_text("Sent")
    expect(mine.get_by_role("link", name="https://example.ru/price")).to_have_attribute("href", "https://example.ru/price")
    expect(phone.get_by_role("textbox", name="Message")).to_have_value("")
    stored = Message.objects.get()
    assert (stored.text, stored.author) == ("Hello! Can I book a cleaning for Friday? Details: https://example.ru/price", "patient")
    # The time is the clinic's (Yekaterinburg), not the browser's or UTC.
    local = stored.created_at.astimezone(world.clinic.tz)
    expect(mine.locator("time")).to_have_text(f"{local:%H:%M}")
    fits_the_screen(phone)
    screenshot(phone, "chat-1-sent", full_page=False)


def test_staff_typing_read_and_reply_arrive_live(phone, sms, live_asgi, world):
    open_clinic_chat(phone, sms)
    phone.get_by_role("textbox", name="Message").fill("Does the clinic have parking?")
    phone.get_by_role("button", name="Send").click()
    mine = bubbles(phone).filter(has_text="Does the clinic have parking?")
    expect(mine.locator(".ticks.sent")).to_be_visible()
    phone.evaluate("() => { window.__samePage = true; }")  # gone if anything reloads the page

    thread = world.thread
    live_asgi.call(
        realtime.send_events,
        [(realtime.patient_groups(thread), {"type": "typing", "thread": thread.pk, "side": "staff", "state": True})],
    )
    expect(phone.get_by_text("Clinic is typing…")).to_be_visible()
    screenshot(phone, "chat-2-typing", full_page=False)

    live_asgi.call(lambda: services.thread_mark_read(thread=Thread.objects.get(pk=thread.pk), actor=world.operator))
    expect(mine.locator(".ticks.read")).to_be_visible()
    expect(mine.locator(".ticks")).to_have_text("Read")

    staff_sends(live_asgi, world, "Yes, free parking behind the building.")
    reply = bubbles(phone).filter(has_text="Yes, free parking behind the building.")
    expect(reply).to_have_count(1)
    expect(reply).to_have_class("msg theirs")
    expect(reply.locator(".author")).to_have_text("Olga")
    expect(phone.get_by_text("Clinic is typing…")).to_be_hidden()
    assert phone.evaluate("() => window.__samePage") is True
    # The page is on screen: the reply counts as read.
    wait_for_db(lambda: Thread.objects.get(pk=thread.pk).patient_read_seq == 2)
    assert Thread.objects.get(pk=thread.pk).patient_unread == 0
    fits_the_screen(phone)
    screenshot(phone, "chat-2-reply", full_page=False)


def test_home_lists_conversations_with_unread_badges(phone, sms, live_asgi, world):
    doctor = f.DoctorFactory(clinic=world.clinic, full_name="Maria Ivanova", user=f.UserFactory(username="maria", is_staff=True))
    doctor.specialties.add(f.SpecialtyFactory(clinic=world.clinic, name="Dental therapist"))
    f.MembershipFactory(user=doctor.user, clinic=world.clinic, role="doctor")
    child = f.DependantFactory(guardian=world.anna, full_name="Misha Petrov")
    child_thread = f.ThreadFactory(clinic=world.clinic, patient=child)
    staff_sends(live_asgi, world, "Your crown is ready.")
    staff_sends(live_asgi, world, "Come any day after 10:00.")
    live_asgi.call(lambda: services.send_message(thread=child_thread, actor=world.operator, text="Misha's check-up is on Friday."))

    sign_in(phone, sms, phone=PHONE, e164=E164)
    card = phone.locator("#my-clinics > li").filter(has_text="Smile Dental")
    clinic_row = card.locator("li.chat-row", has_text="Chat with the clinic").first
    expect(clinic_row.locator(".unread [aria-hidden=true]")).to_have_text("2")
    expect(clinic_row.locator(".unread .sr-only")).to_have_text("2 unread messages")
    expect(clinic_row).to_contain_text("Come any day after 10:00.")
    doctor_row = card.locator("li.chat-row", has_text="Maria Ivanova")
    expect(doctor_row).to_contain_text("Dental therapist")
    expect(doctor_row.get_by_role("button", name="Write to the doctor")).to_be_visible()
    family_row = card.locator(".family-chats li", has_text="for Misha Petrov")
    expect(family_row.locator(".unread .sr-only")).to_have_text("1 unread message")
    fits_the_screen(phone)
    screenshot(phone, "chat-0-home")

    # Writing for the child opens the child's own conversation with the doctor.
    card.get_by_label("Who is it for").select_option(label="Misha Petrov")
    doctor_row.get_by_role("button", name="Write to the doctor").click()
    expect(phone.get_by_role("heading", name="Maria Ivanova", level=1)).to_be_visible()
    expect(phone.get_by_text("Smile Dental · for Misha Petrov")).to_be_visible()
    assert Thread.objects.filter(patient=child, doctor=doctor).exists()
    screenshot(phone, "chat-6-doctor-for-child", full_page=False)


# Past the longest reconnect delay of socket.js (15 s, jittered up to ×1.25).
PAST_EVERY_RETRY_MS = 20_000


def pump_until(page: Page, condition, seconds: float = 10) -> None:
    """Let Playwright deliver the page's events (routed sockets) until the condition holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the page never got there"
        page.wait_for_timeout(50)


def test_messages_sent_during_a_network_drop_arrive_once_in_order(phone, sms, live_asgi, world):
    staff_sends(live_asgi, world, "Welcome to Smile Dental!")
    phone.clock.install()  # the page's timers: a pending reconnect is made to fire at once, not waited for
    sockets = []
    phone.on("websocket", lambda ws: sockets.append(ws))
    # The socket goes through Playwright, which refuses new connections while the "network" is down.
    # (Chromium's offline mode alone freezes an open socket instead of closing it.)
    network = {"up": True}
    attempts = {"refused": 0, "connected": 0}

    def route(ws) -> None:
        if network["up"]:
            attempts["connected"] += 1
            ws.connect_to_server()
        else:
            attempts["refused"] += 1
            ws.close()

    phone.route_web_socket(re.compile(r"/ws/$"), route)
    open_clinic_chat(phone, sms)
    expect(bubbles(phone)).to_have_count(1)

    network["up"] = False
    phone.evaluate("() => window.ClinicChat.realtime._drop()")
    banner = phone.get_by_role("status")
    expect(banner).to_have_text("Connection lost, reconnecting…")
    phone.context.set_offline(True)
    # Written while offline: waits in the outbox with a "sending" mark.
    phone.get_by_role("textbox", name="Message").fill("Are you there?")
    phone.get_by_role("button", name="Send").click()
    expect(bubbles(phone).filter(has_text="Are you there?").locator(".ticks.sending")).to_be_visible()
    staff_sends(live_asgi, world, "First: your X-ray is ready.")
    staff_sends(live_asgi, world, "Second: the doctor will call you.")
    refused = attempts["refused"]
    phone.clock.fast_forward(PAST_EVERY_RETRY_MS)  # the pending retry runs now, after both were sent
    pump_until(phone, lambda: attempts["refused"] > refused)
    expect(bubbles(phone)).to_have_count(2)  # the page tried, and nothing reaches a phone without a network
    screenshot(phone, "chat-3-reconnecting", full_page=False)

    network["up"] = True
    phone.context.set_offline(False)  # the browser's "online" event: socket.js reconnects at once
    expect(banner).to_have_text("Back online")
    expect(bubbles(phone).filter(has_text="Are you there?").locator(".ticks.sent, .ticks.read")).to_be_visible()
    expect(bubbles(phone)).to_have_count(4)
    texts = [t.strip() for t in bubbles(phone).locator(".text").all_inner_texts()]
    staff_texts = [t for t in texts if t != "Are you there?"]
    assert staff_texts == ["Welcome to Smile Dental!", "First: your X-ray is ready.", "Second: the doctor will call you."]
    seqs = [int(s) for s in bubbles(phone).evaluate_all("(items) => items.map((li) => li.dataset.seq)")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert Message.objects.filter(text="Are you there?").count() == 1
    screenshot(phone, "chat-4-back-online", full_page=False)
    expect(banner).to_be_hidden()
    # A retry that was pending when the network came back must not open a second socket: every
    # timer it could have left fires now, and a message sent after that arrives on the one socket.
    connected = attempts["connected"]
    phone.clock.fast_forward(PAST_EVERY_RETRY_MS)
    staff_sends(live_asgi, world, "Third: see you on Friday.")
    expect(bubbles(phone)).to_have_count(5)
    assert attempts["connected"] == connected and len([ws for ws in sockets if not ws.is_closed()]) == 1


def test_photo_is_uploaded_and_shown_as_a_thumbnail(phone, sms, live_asgi, world, tmp_path):
    photo = tmp_path / "tooth.png"
    Image.new("RGB", (800, 600), (60, 140, 220)).save(photo, "PNG")
    open_clinic_chat(phone, sms)

    phone.locator("#composer-file").set_input_files(str(photo))
    chip = phone.locator("#composer-files li").filter(has_text="tooth.png")
    expect(chip.locator("img")).to_be_visible()
    phone.get_by_role("textbox", name="Message").fill("This is the tooth")
    phone.get_by_role("button", name="Send").click()

    sent = bubbles(phone).filter(has_text="This is the tooth")
    thumb = sent.get_by_role("img", name="tooth.png")
    expect(thumb).to_be_visible()
    expect(sent).to_have_class("msg mine")
    phone.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    attachment = Attachment.objects.get()
    assert attachment.message.text == "This is the tooth" and attachment.width == 800
    expect(thumb).to_have_attribute("src", f"/files/{attachment.pk}/thumbnail/")
    expect(phone.locator("#composer-files li")).to_have_count(0)
    fits_the_screen(phone)
    screenshot(phone, "chat-5-attachment", full_page=False)


def test_refused_message_keeps_the_text_and_says_why(phone, sms, live_asgi, world):
    open_clinic_chat(phone, sms)
    too_long = "a" * 4001
    phone.get_by_role("textbox", name="Message").fill(too_long)
    phone.get_by_role("button", name="Send").click()
    expect(phone.get_by_role("alert")).to_have_text("The message is too long: 4001 characters, at most 4000.")
    expect(phone.get_by_role("textbox", name="Message")).to_have_value(too_long)
    expect(bubbles(phone)).to_have_count(0)
    assert not Message.objects.exists()


def staff_socket(open_live, user) -> Page:
    """Olga's desk: a page of the site with a raw /ws/ socket that records every event it hears."""
    desk = open_live(viewport=DESKTOP, user=user)
    desk.goto("/health/")
    desk.evaluate(
        """() => new Promise((resolve) => {
            window.events = [];
            const socket = new WebSocket(location.origin.replace("http", "ws") + "/ws/");
            socket.onmessage = (e) => { const data = JSON.parse(e.data); window.events.push(data); if (data.type === "hello") resolve(); };
        })"""
    )
    return desk


def events_of(desk: Page, kind: str) -> list[dict]:
    return desk.evaluate("(kind) => window.events.filter((e) => e.type === kind)", kind)


def test_staff_hear_the_patient_typing_once_per_burst_and_see_it_read(phone, sms, live_asgi, world, open_live):
    staff_sends(live_asgi, world, "Hello Anna, how can we help?")
    desk = staff_socket(open_live, world.operator)
    open_clinic_chat(phone, sms)
    # The page is on screen: the clinic's message is marked read and the clinic hears it.
    desk.wait_for_function("() => window.events.some((e) => e.type === 'message.read' && e.side === 'patient' && e.seq === 1)")

    phone.get_by_role("textbox", name="Message").press_sequentially("I have a toothache", delay=40)
    desk.wait_for_function("() => window.events.some((e) => e.type === 'typing')")
    phone.get_by_role("button", name="Send").click()
    desk.wait_for_function("() => window.events.some((e) => e.type === 'message.new' && e.author === 'patient')")
    desk.wait_for_function("() => window.events.filter((e) => e.type === 'typing').length >= 2")
    typing = [(e["side"], e["state"]) for e in events_of(desk, "typing")]
    # Eighteen keystrokes within three seconds: one "typing" frame, then "stopped" on send.
    assert typing == [("patient", True), ("patient", False)]
    assert [e["text"] for e in events_of(desk, "message.new")] == ["I have a toothache"]


def test_earlier_messages_load_above_without_leaving_the_page(phone, sms, live_asgi, world):
    def history() -> None:
        from django.core.cache import cache

        for i in range(1, 61):
            author = world.operator if i % 3 == 0 else world.anna.user
            services.send_message(thread=Thread.objects.get(pk=world.thread.pk), actor=author, text=f"Message {i:02d}")
            cache.clear()  # not a throttle test

    live_asgi.call(history)
    open_clinic_chat(phone, sms)
    expect(bubbles(phone)).to_have_count(50)
    expect(bubbles(phone).first).to_contain_text("Message 11")
    phone.evaluate("() => { window.__samePage = true; }")

    phone.get_by_role("link", name="Show earlier messages").click()
    expect(bubbles(phone)).to_have_count(60)
    texts = [t.strip() for t in bubbles(phone).locator(".text").all_inner_texts()]
    assert texts == [f"Message {i:02d}" for i in range(1, 61)]
    expect(phone.get_by_role("link", name="Show earlier messages")).to_have_count(0)
    expect(phone.locator("#bubbles > li.day")).to_have_count(1)
    assert phone.evaluate("() => window.__samePage") is True


def test_new_messages_line_and_day_labels_in_the_page_language(open_live, sms, live_asgi, world):
    """A browser set to Russian on the English page: the days the script labels are English too.

    Anna wrote 58 messages (the first ten 40 days ago) and read everything; then the clinic answered twice.
    """
    old_day = timezone.now() - timedelta(days=40)

    def history() -> None:
        from django.core.cache import cache

        for i in range(1, 59):
            services.send_message(thread=Thread.objects.get(pk=world.thread.pk), actor=world.anna.user, text=f"Message {i:02d}")
            cache.clear()  # not a throttle test
        Message.objects.filter(thread=world.thread, seq__lte=10).update(created_at=old_day)
        for text in ("Your crown is ready.", "Come any day after 10:00."):
            services.send_message(thread=Thread.objects.get(pk=world.thread.pk), actor=world.operator, text=text)

    live_asgi.call(history)
    phone = open_live(locale="ru-RU", language="en")
    open_clinic_chat(phone, sms)
    assert phone.evaluate("() => navigator.language") == "ru-RU"
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    divider = phone.locator("#bubbles > li.unread-divider")
    expect(divider).to_have_text("New messages")
    first_unread = phone.locator("#bubbles > li.unread-divider + li.msg")
    expect(first_unread).to_contain_text("Your crown is ready.")
    fits_the_screen(phone)
    screenshot(phone, "chat-7-new-messages", full_page=False)

    # The earlier page comes from the API: its day label is made by the script.
    phone.get_by_role("link", name="Show earlier messages").click()
    expect(bubbles(phone)).to_have_count(60)
    local = old_day.astimezone(world.clinic.tz)
    today = timezone.now().astimezone(world.clinic.tz)
    label = f"{local.day} {calendar.month_name[local.month]}" + ("" if local.year == today.year else f" {local.year}")
    expect(phone.locator("#bubbles > li.day").first).to_have_text(label)
    expect(divider).to_have_count(1)
    expect(first_unread).to_contain_text("Your crown is ready.")  # still right above the first unread one


def test_without_javascript_the_composer_is_a_plain_form(open_live, live_asgi, sms, world, tmp_path):
    photo = tmp_path / "scan.png"
    Image.new("RGB", (300, 200), (220, 120, 60)).save(photo, "PNG")
    page = open_live(javascript=False)
    sign_in(page, sms, phone=PHONE, e164=E164)
    page.locator("#my-clinics > li").filter(has_text="Smile Dental").get_by_role("button", name="Write to the clinic").click()
    expect(page.get_by_role("heading", name="Smile Dental", level=1)).to_be_visible()
    page.get_by_role("textbox", name="Message").fill("Sent without JavaScript")
    page.locator("#composer-file").set_input_files(str(photo))
    screenshot(page, "chat-7-no-js-composer", full_page=False)
    page.get_by_role("button", name="Send").click()

    sent = bubbles(page).filter(has_text="Sent without JavaScript")
    expect(sent).to_have_count(1)
    expect(sent.get_by_role("img", name="scan.png")).to_be_visible()
    expect(sent.locator(".ticks")).to_have_text("Sent")
    expect(page.get_by_role("textbox", name="Message")).to_have_value("")

    page.get_by_role("textbox", name="Message").fill("x" * 4001)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_have_text("The message is too long: 4001 characters, at most 4000.")
    expect(page.get_by_role("textbox", name="Message")).to_have_value("x" * 4001)
    assert Message.objects.count() == 1
