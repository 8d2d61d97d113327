"""A message is rendered once per side on the server, and the socket event carries it (messaging.fragments)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from messaging import realtime, services
from messaging.models import Message
from messaging.payloads import PATIENT, STAFF, message_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Every (groups, event) services broadcast."""
    events: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(realtime, "send_events", lambda batch: events.extend(batch))
    return events


def new_messages(events, audience_group: str) -> list[dict]:
    return [event for groups, event in events if event.get("type") == "message.new" and any(g.startswith(audience_group) for g in groups)]


def test_the_event_carries_each_side_its_own_rendering_in_every_language(sent, alpha, anna, anna_thread):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.send_message(thread=anna_thread, sender=alpha.operator, text="See https://example.ru <b>now</b>")
    (staff,) = new_messages(sent, "clinic.")
    (patient,) = new_messages(sent, "family.")
    assert set(staff["fragment"]) == set(patient["fragment"]) == {"ru", "en"}
    assert 'class="msg msg--staff"' in staff["fragment"]["en"] and 'class="msg-receipt"' in staff["fragment"]["en"]
    assert 'class="msg theirs"' in patient["fragment"]["en"] and "Remind me" in patient["fragment"]["en"]
    assert "Напомнить" in patient["fragment"]["ru"] or patient["fragment"]["ru"] != patient["fragment"]["en"]
    for html in (*staff["fragment"].values(), *patient["fragment"].values()):
        assert "&lt;b&gt;now&lt;/b&gt;" in html and "<b>" not in html  # the text is escaped, the link made
        assert 'href="https://example.ru"' in html
    assert staff["row"]["id"] == anna_thread.pk and f'data-thread="{anna_thread.pk}"' in staff["row"]["html"]["en"]
    assert "row" not in patient


def test_the_patient_never_receives_staff_only_html(sent, alpha, anna, anna_thread):
    alpha.operator.first_name, alpha.operator.last_name = "Olga", "Secretova"
    alpha.operator.save()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.send_message(thread=anna_thread, sender=alpha.operator, text="she may need a referral", kind="note")
        services.send_message(thread=anna_thread, sender=alpha.operator, text="We will call you")
    staff = new_messages(sent, "clinic.")
    patient = new_messages(sent, "family.")
    assert [e["kind"] for e in staff] == ["note", "text"] and [e["kind"] for e in patient] == ["text"]
    assert "Private note" in staff[0]["fragment"]["en"] and "Secretova" in staff[1]["fragment"]["en"]
    for html in patient[0]["fragment"].values():
        assert "referral" not in html and "Secretova" not in html and "msg--note" not in html  # first name only, or the clinic
    assert "data" not in patient[0] and "row" not in patient[0]


def test_a_staff_event_line_is_worded_in_each_language(alpha, anna_thread):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.thread_set_status(actor=alpha.operator, thread=anna_thread, status="pending")
    event = Message.objects.get(thread=anna_thread, kind=Message.Kind.EVENT)
    fragment = message_payload(event, audience=STAFF)["fragment"]
    assert "changed the status" in fragment["en"] and "changed the status" not in fragment["ru"]


def test_the_inbox_row_of_an_event_costs_no_query_when_the_thread_is_loaded(alpha, anna_thread):
    message = Message.objects.create(thread=anna_thread, seq=1, author="patient", sender=anna_thread.patient.user, text="Hi")
    thread = type(anna_thread).objects.select_related("patient", "clinic", "doctor", "assigned_to").get(pk=anna_thread.pk)
    with CaptureQueriesContext(connection) as queries:
        payload = message_payload(message, audience=STAFF, thread=thread, attachments=[])
    assert len(queries) == 0, [q["sql"] for q in queries]
    assert payload["row"]["tags"] is None  # not loaded: a tag-filtered list re-fetches
    assert message_payload(message, audience=PATIENT, thread=thread, attachments=[])["fragment"]
