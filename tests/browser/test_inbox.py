"""The operator inbox in a real browser, over the real socket (Daphne in the test process)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from messaging import services
from messaging.models import Message, Thread
from tests import factories as f
from tests.browser.conftest import DESKTOP, fits_the_screen, screenshot, staff_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def waiting_thread(alpha, anna, live_asgi):
    """Anna wrote to Alpha Dental and nobody has answered yet; a second, older thread is quiet."""
    f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Pyotr Quiet", patient__phone="+79160000077")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    vip = f.TagFactory(clinic=alpha.clinic, name="VIP")
    thread.contact.tags.add(vip)
    thread.contact.notes = "Prefers morning calls."
    thread.contact.save()
    f.CannedAnswerFactory(
        clinic=alpha.clinic, shortcode="address", title="Our address", text="{patient_first_name}, we are at {clinic_address}."
    )
    # Through the server's loop: Playwright's own event loop runs in this thread.
    live_asgi.call(services.send_message, thread=thread, actor=anna.user, text="Hello! Can I book a cleaning for Saturday?")
    return thread


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 80)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_operator_answers_a_waiting_patient_live(open_live, live_asgi, alpha, waiting_thread):
    page = open_live(viewport=DESKTOP)
    staff_login(page, "olga")
    inbox_link = page.get_by_role("navigation").get_by_role("link", name=re.compile(r"Inbox"))
    expect(inbox_link).to_contain_text("1")  # the unread badge in the sidebar
    inbox_link.click()

    row = page.locator(f'.inbox-row[data-thread="{waiting_thread.pk}"]')
    expect(row).to_contain_text("Anna Petrova")
    expect(row).to_contain_text("Can I book a cleaning")
    expect(row.locator(".inbox-unread")).to_have_text("1")
    expect(row.locator(".inbox-waiting")).to_contain_text(re.compile(r"waiting \d+ min"))
    fits_the_screen(page)
    screenshot(page, "inbox-1-list", full_page=False)

    row.click()
    expect(page.get_by_role("heading", name="Anna Petrova", level=2)).to_be_visible()
    card = page.locator("#inbox-card")
    expect(card).to_contain_text("+7 916 000-00-01")
    expect(card).to_contain_text("anna@example.ru")
    expect(card).to_contain_text("Prefers morning calls.")
    expect(card).to_contain_text("VIP")
    expect(card).to_contain_text("No visits yet.")
    expect(page.locator("#inbox-conn")).to_have_text("Live")
    expect(row.locator(".inbox-unread")).to_have_count(0)  # opening it read it

    # A canned answer through "/" + shortcode, with the variables filled in.
    composer = page.get_by_label("Message", exact=True)
    composer.fill("/addr")
    suggestion = page.get_by_role("listbox", name="Canned answers").get_by_role("option", name="/address Our address")
    expect(suggestion).to_be_visible()
    composer.press("Tab")
    expect(composer).to_have_value(re.compile(r"^Anna, we are at Москва, ул. Примерная, 1\.$"))
    composer.fill("Hello Anna! Saturday 10:00 is free — shall I book it?")
    composer.press("Enter")
    mine = page.locator(".msg.msg--staff:not(.is-pending)", has_text="Saturday 10:00 is free")
    expect(mine).to_be_visible()
    expect(mine.locator(".msg-receipt")).to_have_text("✓")
    assert Message.objects.filter(thread=waiting_thread, author="staff", text__startswith="Hello Anna!").exists()

    # A photo: uploaded through the API at once, sent with the next message, shown as a thumbnail.
    page.locator("#inbox-file").set_input_files(files=[{"name": "xray.png", "mimeType": "image/png", "buffer": png_bytes()}])
    expect(page.locator(".inbox-file-chip")).to_contain_text("xray.png")
    composer.fill("Here is the picture")
    composer.press("Enter")
    photo = page.locator(".msg.msg--staff:not(.is-pending)", has_text="Here is the picture")
    expect(photo.locator("img")).to_be_visible()
    expect(page.locator(".inbox-file-chip")).to_have_count(0)
    assert Message.objects.get(thread=waiting_thread, text="Here is the picture").attachments.count() == 1

    # A private note is shown apart from the replies.
    page.get_by_label("Private note").check()
    expect(page.locator("#inbox-note-hint")).to_contain_text("@mark")
    composer.fill("@mark she may need a referral")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg.msg--note:not(.is-pending)", has_text="she may need a referral")).to_contain_text("Private note")
    page.get_by_label("Private note").uncheck()

    # The patient answers (server side): it appears without a reload, and the patient's reading ticks the reply.
    live_asgi.call(services.send_message, thread=waiting_thread, actor=waiting_thread.patient.user, text="Yes please, book it!")
    expect(page.locator(".msg.msg--patient", has_text="Yes please, book it!")).to_be_visible()
    expect(mine.locator(".msg-receipt")).to_have_class(re.compile("is-read"))  # the patient's message reads everything before it
    expect(row).to_contain_text("Yes please, book it!")

    # Controls on the card: take the thread, mark it pending.
    page.get_by_role("button", name="Take it").click()
    expect(page.get_by_label("Assigned to")).to_have_value(str(alpha.operator.pk))
    expect(row.locator(".inbox-assignee")).to_have_text("olga")  # the list follows
    expect(page.locator('[data-scope="mine"] .inbox-count')).to_have_text("1")
    page.get_by_label("Status", exact=True).select_option("pending")
    expect(page.locator(".msg.msg--event", has_text="changed the status")).to_be_visible()
    expect(row.locator(".inbox-status")).to_have_text("Pending")
    waiting_thread.refresh_from_db()
    assert (waiting_thread.assigned_to_id, waiting_thread.status) == (alpha.operator.pk, Thread.Status.PENDING)

    fits_the_screen(page)
    screenshot(page, "inbox-2-thread", full_page=False)


def test_second_operator_sees_who_is_viewing_and_replying(open_live, alpha, waiting_thread):
    olga = open_live(viewport=DESKTOP)
    staff_login(olga, "olga")
    olga.goto(f"/admin/inbox/{waiting_thread.pk}/")
    expect(olga.locator("#inbox-conn")).to_have_text("Live")
    olga.get_by_label("Message", exact=True).press_sequentially("Let me check the schedule", delay=20)

    mark = open_live(viewport=DESKTOP)
    staff_login(mark, "mark")
    mark.goto(f"/admin/inbox/{waiting_thread.pk}/")
    expect(mark.locator("#inbox-conn")).to_have_text("Live")
    # "replying" lasts REPLY_TTL seconds after a keystroke: she is still typing when he is in, however long his sign-in took.
    olga.get_by_label("Message", exact=True).press_sequentially(" for you", delay=20)
    presence = mark.locator("#inbox-presence")
    expect(presence).to_contain_text("olga is replying")
    fits_the_screen(mark)
    screenshot(mark, "inbox-3-presence", full_page=False)

    # Olga sees Mark arrive (he only views).
    expect(olga.locator("#inbox-presence")).to_contain_text("mark is also viewing")


def test_doctor_inbox_lists_only_own_threads(open_live, alpha, waiting_thread):
    own = f.ThreadFactory(clinic=alpha.clinic, patient=waiting_thread.patient, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    page = open_live(viewport={"width": 1024, "height": 768})  # a smaller laptop: the sidebar folds away
    staff_login(page, "dima")
    page.goto("/admin/inbox/")
    rows = page.locator(".inbox-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-thread", str(own.pk))
    rows.first.click()
    expect(page.locator("#inbox-conn")).to_have_text("Live")
    expect(page.locator("#inbox-card")).to_contain_text("Contact cards are shown to the front desk.")
    expect(page.get_by_text("Merge with another contact")).to_have_count(0)
    fits_the_screen(page)
    screenshot(page, "inbox-4-doctor-1024", full_page=False)


def test_a_new_message_moves_its_row_to_the_top_without_fetching_the_list(open_live, live_asgi, alpha, waiting_thread):
    """The row comes rendered with the message: no request for the list, only for the filters' counts."""
    page = open_live(viewport=DESKTOP)
    staff_login(page, "olga")
    # The list is re-fetched once when the socket connects (what changed while away): not counted.
    with page.expect_response(lambda response: "/admin/inbox/list/" in response.url):
        page.goto(page.url.split("/admin/")[0] + f"/admin/inbox/{waiting_thread.pk}/")
    quiet = Thread.objects.get(clinic=alpha.clinic, patient__full_name="Pyotr Quiet")
    rows = page.locator(".inbox-row")
    expect(rows.first).to_have_attribute("data-thread", str(waiting_thread.pk))
    expect(page.locator("#inbox-conn")).to_have_text("Live")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/admin/inbox/list/" in request.url else None)

    with page.expect_response(lambda response: "/admin/inbox/list/filters/" in response.url):  # the counts, alone
        live_asgi.call(services.send_message, thread=quiet, actor=quiet.patient.user, text="Is the clinic open on Sunday?")
    expect(rows.first).to_have_attribute("data-thread", str(quiet.pk))
    expect(rows.first).to_contain_text("Is the clinic open on Sunday?")
    expect(rows.first.locator(".inbox-unread")).to_have_text("1")
    expect(rows).to_have_count(2)  # moved, not added twice
    expect(rows.first).to_have_attribute("href", re.compile(rf"/admin/inbox/{quiet.pk}/$"))
    assert [url for url in asked if "/admin/inbox/list/filters/" not in url] == []
