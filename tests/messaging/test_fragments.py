"""A message is rendered once per side on the server, and the socket event carries it (messaging.fragments)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from messaging import realtime, services
from messaging.models import Message
from messaging.payloads import PATIENT, STAFF, message_payload, socket_message_event
from tests.messaging.sockets import next_of, open_socket

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Every (groups, event) services broadcast."""
    events: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(realtime, "send_events", lambda batch: events.extend(batch))
    return events


def new_messages(events, audience_group: str) -> list[dict]:
    return [event for groups, event in events if event.get("type") == "message.new" and any(g.startswith(audience_group) for g in groups)]


def rendered(event: dict, language: str) -> dict:
    """The event as a socket of that side and language receives it (what RealtimeConsumer.user_event sends)."""
    payload = socket_message_event(event["render"]["message"], audience=event["render"]["audience"], language=language)
    assert payload is not None
    return payload


def test_the_event_carries_each_side_its_own_rendering_in_every_language(sent, alpha, anna, anna_thread):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.send_message(thread=anna_thread, actor=alpha.operator, text="See https://example.ru <b>now</b>")
    (staff_stub,) = new_messages(sent, "clinic.")
    (patient_stub,) = new_messages(sent, "family.")
    assert staff_stub["render"]["audience"] == STAFF and patient_stub["render"]["audience"] == PATIENT
    staff = {code: rendered(staff_stub, code) for code in ("ru", "en")}
    patient = {code: rendered(patient_stub, code) for code in ("ru", "en")}
    assert 'class="msg msg--staff"' in staff["en"]["fragment"]["en"] and 'class="msg-receipt"' in staff["en"]["fragment"]["en"]
    assert 'class="msg theirs"' in patient["en"]["fragment"]["en"] and "Remind me" in patient["en"]["fragment"]["en"]
    assert "Напомнить" in patient["ru"]["fragment"]["ru"]
    for html in [event["fragment"][code] for events in (staff, patient) for code, event in events.items()]:
        assert "&lt;b&gt;now&lt;/b&gt;" in html and "<b>" not in html  # the text is escaped, the link made
        assert 'href="https://example.ru"' in html
    assert staff["en"]["row"]["id"] == anna_thread.pk and f'data-thread="{anna_thread.pk}"' in staff["en"]["row"]["html"]["en"]
    assert "row" not in patient["en"]


def test_the_patient_never_receives_staff_only_html(sent, alpha, anna, anna_thread):
    alpha.operator.first_name, alpha.operator.last_name = "Olga", "Secretova"
    alpha.operator.save()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.send_message(thread=anna_thread, actor=alpha.operator, text="she may need a referral", kind="note")
        services.send_message(thread=anna_thread, actor=alpha.operator, text="We will call you")
    staff = [rendered(stub, "en") for stub in new_messages(sent, "clinic.")]
    patient = [rendered(stub, "en") for stub in new_messages(sent, "family.")]
    assert [e["kind"] for e in staff] == ["note", "text"] and [e["kind"] for e in patient] == ["text"]
    assert "Private note" in staff[0]["fragment"]["en"] and "Secretova" in staff[1]["fragment"]["en"]
    for html in patient[0]["fragment"].values():
        assert "referral" not in html and "Secretova" not in html and "msg--note" not in html  # first name only, or the clinic
    assert "data" not in patient[0] and "row" not in patient[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_socket_receives_the_message_rendered_in_its_language(alpha, anna, anna_thread, socket_thread_closed):
    operator = await open_socket(alpha.operator, language=b"ru")
    patient = await open_socket(anna.user, language=b"en")
    try:
        await sync_to_async(services.send_message)(thread=anna_thread, actor=alpha.operator, text="Ждём вас")
        staff_event = await next_of(operator, "message.new")
        patient_event = await next_of(patient, "message.new")
    finally:
        await operator.disconnect()
        await patient.disconnect()
    assert list(staff_event["fragment"]) == ["ru"] and "Ждём вас" in staff_event["fragment"]["ru"]
    assert staff_event["row"]["id"] == anna_thread.pk
    assert list(patient_event["fragment"]) == ["en"] and "Remind me" in patient_event["fragment"]["en"]
    assert "render" not in patient_event and "row" not in patient_event


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
