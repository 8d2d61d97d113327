"""Booking from the inbox, over HTTP: times offered in a panel of the conversation, "Book a visit" from the
card and back, a single contact match chosen, each success message shown once, the sidebar badge's count."""

from __future__ import annotations

import json
import re

import pytest

from appointments.models import Visit
from messaging.models import Message
from messaging.services import send_message
from tests import factories as f
from tests.conftest import CommittingClient, at

pytestmark = pytest.mark.django_db

FETCH = {"HTTP_HX_REQUEST": "true"}  # what inbox.js sends with its fetches
WORDS = {
    "en": {"sent": "The times are sent: the patient books one with a tap.", "choose": "Choose a service and at least one time.",
           "booked": "Visit booked:", "book": "Book a visit", "back": "Back to the conversation"},
    "ru": {"sent": "Время отправлено: пациент запишется одним нажатием.", "choose": "Выберите услугу и хотя бы одно время.",
           "booked": "Визит записан:", "book": "Записать на приём", "back": "Вернуться к переписке"},
}  # fmt: skip


@pytest.fixture(params=["ru", "en"])
def lang(request) -> str:
    return request.param


def staff(user, lang: str) -> CommittingClient:
    client = CommittingClient(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(user)
    return client


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def slot_values(page: str) -> list[str]:
    return [v.split('"')[0] for v in page.split('name="slot" value="')[1:]]


def test_the_offer_panel_works_inside_the_conversation(alpha, checkup, anna, anna_thread, day, lang):
    thread, words = anna.threads.get(), WORDS[lang]
    olga = staff(alpha.operator, lang)
    url = f"/admin/calendar/offer/{thread.pk}/"

    panel = html(olga.get(url, {"date": day.isoformat()}, **FETCH))
    assert "<html" not in panel and 'id="nav-sidebar"' not in panel  # the panel alone, for the chat
    assert f'<option value="{checkup.pk}" selected>' in panel  # the clinic's only service is chosen
    chosen = slot_values(panel)[:2]
    assert len(chosen) == 2 and all(f"|{day.isoformat()}T" in v for v in chosen)  # from the day picked
    assert panel.count('class="offer-slot"') >= 2

    refused = html(olga.post(url, {"service": checkup.pk, "send": "1"}, **FETCH))
    assert words["choose"] in refused and "data-sent" not in refused
    assert not Message.objects.filter(thread=thread, data__has_key="slots").exists()

    sent = html(olga.post(url, {"service": checkup.pk, "slot": chosen, "send": "1", "text": "Any of these?"}, **FETCH))
    assert 'data-sent="1"' in sent and words["sent"] in sent
    message = Message.objects.get(thread=thread, data__has_key="slots")
    assert [s["starts_at"] for s in message.data["slots"]] == [v.split("|")[1] for v in chosen]
    assert message.text.startswith("Any of these?")
    assert words["sent"] not in html(olga.get(f"/admin/inbox/{thread.pk}/"))  # shown by the panel, not again later


def test_a_date_far_ahead_in_the_offer_panel_is_bounded_not_a_500(alpha, checkup, anna, anna_thread):
    olga = staff(alpha.operator, "en")
    panel = html(olga.get(f"/admin/calendar/offer/{anna.threads.get().pk}/", {"date": "9999-12-31"}, **FETCH))
    assert "Give a date at most" in panel  # refused at the edge with a reason; the panel shows this week instead
    assert "data-offer" in panel


def test_the_offer_page_without_javascript_shows_its_success_once_in_the_conversation(alpha, checkup, anna, anna_thread, lang):
    thread, words = anna.threads.get(), WORDS[lang]
    olga = staff(alpha.operator, lang)
    url = f"/admin/calendar/offer/{thread.pk}/"
    chosen = slot_values(html(olga.get(url)))[:1]
    response = olga.post(url, {"service": checkup.pk, "slot": chosen, "send": "1"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/admin/inbox/{thread.pk}/"
    assert html(response).count(words["sent"]) == 1


def test_a_contact_search_with_one_match_chooses_that_person(alpha, checkup, anna, anna_thread, day):
    f.ContactFactory(clinic=alpha.clinic, patient__full_name="Anna Sidorova", patient__phone="+79160000009")
    olga = staff(alpha.operator, "en")
    one = html(olga.post("/admin/calendar/new/", {"q": "Petrova", "date": day.isoformat(), "find": "1"}))
    assert f'<option value="{anna.pk}" selected>' in one
    two = html(olga.post("/admin/calendar/new/", {"q": "Anna", "date": day.isoformat(), "find": "1"}))
    assert f'<option value="{anna.pk}">' in two and " selected>" not in two.split('id="booking-patient"')[1].split("</select>")[0]


def test_book_a_visit_from_the_card_and_return_to_the_conversation(alpha, checkup, anna, anna_thread, day, lang):
    thread, words = anna.threads.get(), WORDS[lang]
    olga = staff(alpha.operator, lang)
    card = html(olga.get(f"/admin/inbox/{thread.pk}/card/"))
    link = f"/admin/calendar/new/?clinic={alpha.clinic.pk}&amp;patient={anna.pk}&amp;thread={thread.pk}"
    assert link in card and words["book"] in card
    own = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind="doctor", doctor=alpha.doctor)
    assert words["book"] not in html(staff(alpha.doctor_user, lang).get(f"/admin/inbox/{own.pk}/card/"))  # doctors do not book

    form = html(olga.get(link.replace("&amp;", "&")))
    assert f'<option value="{anna.pk}" selected>' in form and f'name="thread" value="{thread.pk}"' in form
    assert f'href="/admin/inbox/{thread.pk}/">{words["back"]}' in form
    start = at(alpha.clinic, day, 11)
    booking = {"clinic": alpha.clinic.pk, "thread": thread.pk, "patient": anna.pk, "doctor": alpha.doctor.pk, "service": checkup.pk,
               "date": day.isoformat(), "starts_at": start.isoformat(), "book": "1"}  # fmt: skip
    response = olga.post("/admin/calendar/new/", booking, follow=True)
    assert response.redirect_chain[-1][0] == f"/admin/inbox/{thread.pk}/"
    page = html(response)
    flash = re.escape(words["booked"]) + r"[^<]*Anna Petrova"  # the thread's own line about the visit names no patient
    assert len(re.findall(flash, page)) == 1  # Unfold's message above the inbox, not again on the card
    visit = Visit.objects.get(patient=anna)
    assert (visit.thread_id, visit.starts_at, visit.source, visit.created_by) == (thread.pk, start, "operator", alpha.operator)
    assert f"/admin/calendar/visit/{visit.pk}/" in page  # the card lists it


def test_a_thread_of_another_patient_is_not_where_a_booking_returns(alpha, checkup, anna, anna_thread, day):
    stranger = f.ThreadFactory(clinic=alpha.clinic)
    olga = staff(alpha.operator, "en")
    start = at(alpha.clinic, day, 12)
    booking = {"clinic": alpha.clinic.pk, "thread": stranger.pk, "patient": anna.pk, "doctor": alpha.doctor.pk, "service": checkup.pk,
               "date": day.isoformat(), "starts_at": start.isoformat(), "book": "1"}  # fmt: skip
    response = olga.post("/admin/calendar/new/", booking)
    assert response.status_code == 302 and response["Location"].startswith("/admin/calendar/?")
    assert Visit.objects.get(patient=anna).thread_id is None


def test_the_sidebar_badge_count_and_the_list_carry_the_unread_threads(alpha, beta, anna, anna_thread, django_capture_on_commit_callbacks):
    olga = staff(alpha.operator, "en")
    assert json.loads(olga.get("/admin/inbox/badge/").content) == {"unread_threads": 0}
    with django_capture_on_commit_callbacks(execute=True):  # the counts' cache version moves after the commit
        send_message(thread=anna.threads.get(), actor=anna.user, text="Hello, is Saturday free?")
    f.ThreadFactory(clinic=alpha.clinic)  # a quiet thread counts for nothing
    assert json.loads(olga.get("/admin/inbox/badge/").content) == {"unread_threads": 1}
    assert 'data-unread-threads="1"' in html(olga.get("/admin/inbox/list/"))
    assert json.loads(staff(beta.operator, "en").get("/admin/inbox/badge/").content) == {"unread_threads": 0}  # another clinic's
    assert CommittingClient().get("/admin/inbox/badge/").status_code == 302  # to the login
