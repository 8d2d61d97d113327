"""A reminder from a conversation: "Remind me" under the clinic's message prefills the form; saving goes back to the thread."""

from __future__ import annotations

import html
import re
from datetime import datetime, time, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import TestCase
from django.utils import timezone

from messaging.models import Message, Thread
from messaging.services import send_message
from notifications import services
from notifications.models import PersonalReminder
from tests import factories as f

pytestmark = pytest.mark.django_db

ADVICE = "Take   amoxicillin 500 mg\nthree times a day for seven days, after meals."


class _Form(HTMLParser):
    """The values a person sees in the #new-reminder form: inputs, the textarea, the chosen options."""

    def __init__(self, page: str):
        super().__init__()
        self.values: dict[str, str] = {}
        self._inside = self._select = self._textarea = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "new-reminder":
            self._inside = True
        if not self._inside:
            return
        if tag == "input" and attrs.get("name"):
            self.values[attrs["name"]] = attrs.get("value") or ""
        elif tag == "select":
            self._select = attrs["name"]
            self.values.setdefault(self._select, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.values[self._select] = attrs["value"]
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.values[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data.strip("\n")


def _remind_links(page: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'<a class="remind" href="([^"]+)">Remind me</a>', page)]


def _tomorrow(clinic) -> str:
    return (timezone.localtime(timezone.now(), clinic.tz).date() + timedelta(days=1)).isoformat()


@pytest.fixture
def conversation(alpha, anna, anna_thread):
    """Anna asked, the clinic answered, the clinic posted a system line and a private note."""
    send_message(thread=anna_thread, actor=anna.user, text="How should I take the antibiotic?")
    advice, _ = send_message(thread=anna_thread, actor=alpha.operator, text=ADVICE)
    send_message(thread=anna_thread, actor=None, author=Message.Author.SYSTEM, text="Visit booked: 12 March, 10:00")
    send_message(thread=anna_thread, actor=alpha.operator, kind=Message.Kind.NOTE, text="Allergic to penicillin? Check the card.")
    return advice


def test_remind_me_only_under_the_clinics_messages_and_set_a_reminder_in_the_header(web, alpha, anna, anna_thread, conversation):
    web.force_login(anna.user)
    page = web.get(f"/portal/threads/{anna_thread.pk}/").content.decode()
    assert _remind_links(page) == [f"/portal/notifications/reminders/new/?thread={anna_thread.pk}&message={conversation.seq}"]
    assert f'<a class="chat-remind" href="/portal/notifications/reminders/new/?thread={anna_thread.pk}" aria-label="Set a reminder"' in page
    assert "Set a reminder" in page


def test_remind_me_prefills_the_thread_clinic_person_and_the_message_words(web, alpha, anna, anna_thread, conversation):
    web.force_login(anna.user)
    page = web.get(_remind_links(web.get(f"/portal/threads/{anna_thread.pk}/").content.decode())[0])
    assert page.status_code == 200
    form = _Form(page.content.decode()).values
    assert form["text"] == "Take amoxicillin 500 mg three times a day for seven days, after meals."
    assert (form["clinic"], form["patient"]) == (str(alpha.clinic.pk), str(anna.pk))
    assert form["day"] == _tomorrow(alpha.clinic) and form["at"] == ""
    assert (form["thread"], form["message"]) == (str(anna_thread.pk), str(conversation.seq))
    assert "Back to the conversation" in page.content.decode()


def test_a_long_message_is_trimmed_to_what_a_reminder_holds(web, alpha, anna, anna_thread):
    long, _ = send_message(thread=anna_thread, actor=alpha.operator, text="Rinse twice a day. " * 20)
    web.force_login(anna.user)
    form = _Form(web.get(f"/portal/notifications/reminders/new/?thread={anna_thread.pk}&message={long.seq}").content.decode()).values
    assert len(form["text"]) == 200 and form["text"].startswith("Rinse twice a day. Rinse") and form["text"].endswith("…")


def test_a_childs_thread_presets_the_child(web, alpha, anna):
    child = f.DependantFactory(guardian=anna, full_name="Masha Petrova")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=child, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    advice, _ = send_message(thread=thread, actor=alpha.doctor_user, text="Vitamin D, two drops every morning.")
    web.force_login(anna.user)
    form = _Form(web.get(f"/portal/notifications/reminders/new/?thread={thread.pk}&message={advice.seq}").content.decode()).values
    assert (form["patient"], form["text"]) == (str(child.pk), "Vitamin D, two drops every morning.")


def test_a_thread_of_another_family_is_ignored(web, alpha, anna, anna_thread):
    stranger = f.PatientFactory(full_name="Oleg Sidorov")
    theirs = f.ThreadFactory(clinic=alpha.clinic, patient=stranger, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    secret, _ = send_message(thread=theirs, actor=alpha.doctor_user, text="Oleg, your biopsy result is ready.")
    web.force_login(anna.user)
    response = web.get(f"/portal/notifications/reminders/new/?thread={theirs.pk}&message={secret.seq}")
    page = response.content.decode()
    assert response.status_code == 200
    assert "biopsy" not in page and "Oleg" not in page and f"/portal/threads/{theirs.pk}/" not in page
    form = _Form(page).values
    assert form["text"] == "" and "thread" not in form and "message" not in form
    assert form["day"] == "" and form["patient"] == ""  # nothing preset: the first choice is just the browser's default

    # Posting that thread id back changes nothing either: the reminder is Anna's, the way back her notifications page.
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=1)
    data = {"form": "reminder", "thread": theirs.pk, "text": "Floss", "clinic": alpha.clinic.pk, "patient": anna.pk}
    response = web.post("/portal/notifications/reminders/new/", {**data, "day": day.isoformat(), "at": "09:30", "repeat": "once"})
    assert response.status_code == 302 and response["Location"] == "/portal/notifications/"
    assert PersonalReminder.objects.get().patient == anna


@pytest.mark.parametrize("message", ["own", "note", "system", "missing", "x1"])
def test_only_the_clinics_visible_messages_prefill(web, alpha, anna, anna_thread, conversation, message):
    seqs = {m.kind if m.kind == Message.Kind.NOTE else m.author: m.seq for m in Message.objects.filter(thread=anna_thread)}
    seq = {"own": seqs["patient"], "note": seqs["note"], "system": seqs["system"], "missing": 999, "x1": "x1"}[message]
    web.force_login(anna.user)
    page = web.get(f"/portal/notifications/reminders/new/?thread={anna_thread.pk}&message={seq}").content.decode()
    form = _Form(page).values
    assert form["text"] == "" and form["clinic"] == str(alpha.clinic.pk)  # the thread still counts, the words do not
    assert "penicillin" not in page and "Visit booked" not in page and "antibiotic?" not in page


def test_saving_returns_to_the_thread_with_a_confirmation_and_the_reminder_is_listed(web, alpha, anna, anna_thread, conversation):
    web.force_login(anna.user)
    link = _remind_links(web.get(f"/portal/threads/{anna_thread.pk}/").content.decode())[0]
    form = _Form(web.get(link).content.decode()).values
    response = web.post(urlsplit(link).path, {**form, "at": "08:15", "repeat": "daily"})
    assert response.status_code == 302 and response["Location"] == f"/portal/threads/{anna_thread.pk}/#latest"

    thread_page = web.get(response["Location"]).content.decode()
    day = datetime.fromisoformat(form["day"])
    assert f"Reminder set for {day.day} {day:%B}, 08:15." in thread_page
    reminder = PersonalReminder.objects.get()
    assert (reminder.patient, reminder.clinic, reminder.repeat) == (anna, alpha.clinic, "daily")
    assert reminder.next_at == datetime.combine(day.date(), time(8, 15), tzinfo=alpha.clinic.tz)
    assert reminder.text == "Take amoxicillin 500 mg three times a day for seven days, after meals."
    assert "Take amoxicillin 500 mg" in web.get("/portal/notifications/").content.decode()


def test_a_refused_time_stays_on_the_form_with_the_way_back(web, alpha, anna, anna_thread, conversation):
    web.force_login(anna.user)
    yesterday = (timezone.localtime(timezone.now(), alpha.clinic.tz).date() - timedelta(days=1)).isoformat()
    data = {"form": "reminder", "thread": anna_thread.pk, "message": conversation.seq, "text": "Take it", "clinic": alpha.clinic.pk}
    response = web.post(
        "/portal/notifications/reminders/new/", {**data, "patient": anna.pk, "day": yesterday, "at": "10:00", "repeat": "once"}
    )
    page = response.content.decode()
    assert response.status_code == 400 and "Choose a time in the future." in page
    assert _Form(page).values["thread"] == str(anna_thread.pk) and f'href="/portal/threads/{anna_thread.pk}/#latest"' in page
    assert not PersonalReminder.objects.exists()


def test_a_reminder_from_a_sensitive_thread_sends_only_the_words_the_patient_saved(web, settings, alpha, anna, anna_thread, smsru):
    Thread.objects.filter(pk=anna_thread.pk).update(sensitive=True)
    words = "Your HIV test is negative. " + "Repeat it in three months at the same lab, no appointment needed. " * 3
    with TestCase.captureOnCommitCallbacks(execute=True):
        result, _ = send_message(thread=anna_thread, actor=alpha.operator, text=words)
    web.force_login(anna.user)
    link = f"/portal/notifications/reminders/new/?thread={anna_thread.pk}&message={result.seq}"
    form = _Form(web.get(link).content.decode()).values
    web.post(urlsplit(link).path, {**form, "text": "Repeat the test", "at": "10:00", "repeat": "once"})

    moment = datetime.combine(datetime.fromisoformat(form["day"]).date(), time(10, 1), tzinfo=alpha.clinic.tz)
    services.personal_reminders_queue(now=moment)
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.notifications_dispatch_due(now=moment)
    texts = [parse_qs(call.request.content.decode())["msg"][0] for call in smsru.calls]
    reminder_sms = [t for t in texts if "Repeat the test" in t]  # in the clinic's language: "Напоминание: …"
    assert len(reminder_sms) == 1 and reminder_sms[0].endswith(f": Repeat the test\n{settings.SITE_URL}/portal/notifications/")
    assert not any("HIV" in t or "same lab" in t for t in texts)
