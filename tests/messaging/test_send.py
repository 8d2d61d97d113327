"""Sending through the API: numbering, resends, counters, notes, inert HTML, bad input."""

import pytest

from messaging.models import Message, Thread
from notifications.models import Notification
from patients.models import ConsentRecord
from tests import factories as f

pytestmark = pytest.mark.django_db


def send(api, thread, text, **extra):
    return api.post(f"/api/threads/{thread.pk}/messages/", {"text": text, **extra}, format="json")


def test_patient_message_is_numbered_and_counted_for_staff(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    first = send(api, anna_thread, "Hello, can I book a cleaning?", client_msg_id="c-1")
    second = send(api, anna_thread, "Tomorrow if possible", client_msg_id="c-2")
    assert (first.status_code, second.status_code) == (201, 201)
    assert [first.json()["seq"], second.json()["seq"]] == [1, 2]
    anna_thread.refresh_from_db()
    assert anna_thread.staff_unread == 2 and anna_thread.waiting_since is not None
    assert anna_thread.last_message_preview == "Tomorrow if possible"


def test_resend_with_the_same_client_msg_id_stores_one_message(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    first = send(api, anna_thread, "Is the clinic open on Sunday?", client_msg_id="retry-me")
    again = send(api, anna_thread, "Is the clinic open on Sunday?", client_msg_id="retry-me")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["seq"] == first.json()["seq"]
    assert Message.objects.filter(thread=anna_thread).count() == 1
    anna_thread.refresh_from_db()
    assert anna_thread.staff_unread == 1


def test_staff_reply_resets_waiting_and_counts_for_the_patient(api, alpha, anna, anna_thread):
    api.force_authenticate(anna.user)
    send(api, anna_thread, "Hello")
    api.force_authenticate(alpha.operator)
    reply = send(api, anna_thread, "Hello Anna, yes we can")
    assert reply.status_code == 201
    anna_thread.refresh_from_db()
    assert anna_thread.waiting_since is None and anna_thread.first_response_at is not None
    assert anna_thread.patient_unread == 1 and anna_thread.staff_unread == 0


def test_private_note_never_reaches_the_patient(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    assert send(api, anna_thread, "Patient is nervous, be gentle", note=True).status_code == 201
    assert send(api, anna_thread, "We are open 9 to 21").status_code == 201
    api.force_authenticate(anna.user)
    seen = api.get(f"/api/threads/{anna_thread.pk}/messages/").json()["results"]
    assert [m["text"] for m in seen] == ["We are open 9 to 21"]
    assert "nervous" not in api.get(f"/api/threads/{anna_thread.pk}/").content.decode()
    anna_thread.refresh_from_db()
    assert anna_thread.patient_unread == 1 and anna_thread.last_message_preview == "We are open 9 to 21"


def test_patient_cannot_write_a_private_note(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    response = send(api, anna_thread, "sneaky", note=True)
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_html_in_a_message_arrives_inert(api, alpha, anna, anna_thread):
    api.force_authenticate(anna.user)
    body = send(api, anna_thread, "<script>alert(1)</script> <img src=x onerror=alert(2)> see https://example.ru/a?b=1").json()
    assert body["text"].startswith("<script>")  # stored and returned as typed
    assert "<script>" not in body["html"] and "<img" not in body["html"]
    assert "&lt;script&gt;" in body["html"]
    assert '<a target="_blank" href="https://example.ru/a?b=1" rel="nofollow">' in body["html"]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"text": "   "}, "text", "Write a message"),
        ({"text": "x" * 4001}, "text", "too long"),
        ({"text": "hi", "attachments": [999999]}, "attachments", "upload it again"),
    ],
)
def test_bad_messages_are_refused_with_a_reason_and_nothing_is_written(api, anna, anna_thread, payload, field, words):
    api.force_authenticate(anna.user)
    response = api.post(f"/api/threads/{anna_thread.pk}/messages/", payload, format="json")
    assert response.status_code == 400
    assert words in response.json()["errors"][field][0]
    anna_thread.refresh_from_db()
    assert anna_thread.last_seq == 0 and not Message.objects.exists()


def test_four_thousand_characters_are_fine(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    assert send(api, anna_thread, "я" * 4000).status_code == 201


def test_unknown_and_foreign_threads_are_not_found(api, alpha, anna, boris_thread):
    for user in (anna.user, alpha.operator, alpha.owner):
        api.force_authenticate(user)
        assert send(api, boris_thread, "hello").status_code == 404
        assert api.get(f"/api/threads/{boris_thread.pk}/messages/").status_code == 404
        assert api.get("/api/threads/987654/").status_code == 404
    assert not Message.objects.exists()


def test_without_consent_the_patient_is_told_to_give_it(api, alpha, anna, anna_thread):
    ConsentRecord.objects.filter(patient=anna).delete()
    api.force_authenticate(anna.user)
    response = send(api, anna_thread, "hello")
    assert response.status_code == 403 and response.json()["code"] == "consent_required"
    assert not Message.objects.exists()


def test_after_withdrawal_staff_cannot_write_to_the_patient(api, alpha, anna, anna_thread):
    from patients.services import consent_withdraw

    consent_withdraw(patient=anna, clinic=alpha.clinic, ip="127.0.0.1", user_agent="test")
    api.force_authenticate(alpha.operator)
    response = send(api, anna_thread, "Special offer!")
    assert response.status_code == 403 and response.json()["code"] == "consent_required"
    assert send(api, anna_thread, "Withdrew consent on the phone too", note=True).status_code == 201  # the clinic's own record


def test_sending_too_fast_is_throttled(clock, api, anna, anna_thread):
    # The limit counts per clock minute: the stopped clock keeps the 31 sends in one.
    api.force_authenticate(anna.user)
    codes = [send(api, anna_thread, f"message {i}").status_code for i in range(31)]
    assert codes[:30] == [201] * 30
    assert codes[30] == 429
    last = send(api, anna_thread, "one more")
    assert "too fast" in last.json()["detail"] and int(last["Retry-After"]) >= 1
    assert Message.objects.count() == 30
    clock.shift(60)  # the next minute is a fresh window
    assert send(api, anna_thread, "after a minute").status_code == 201


def test_offline_patient_gets_an_outbox_row(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    send(api, anna_thread, "Your results are ready")
    row = Notification.objects.get()
    assert row.recipient == anna.user and row.kind == "message" and row.status == "pending"


def test_patient_writes_for_a_dependant_in_the_dependants_thread(api, alpha, anna):
    child = f.DependantFactory(guardian=anna, full_name="Misha Petrov")
    f.ConsentRecordFactory(patient=anna, clinic=alpha.clinic, document=f.ConsentDocumentFactory(clinic=alpha.clinic))
    api.force_authenticate(anna.user)
    opened = api.post("/api/threads/", {"clinic": "alpha", "patient": child.pk}, format="json")
    assert opened.status_code == 201, opened.json()
    thread = Thread.objects.get(pk=opened.json()["id"])
    assert thread.patient == child and thread.contact.patient == child
    assert send(api, thread, "Misha has a toothache").status_code == 201
    again = api.post("/api/threads/", {"clinic": "alpha", "patient": child.pk}, format="json")
    assert again.status_code == 200 and again.json()["id"] == thread.pk


def test_patient_cannot_open_a_thread_for_someone_elses_child(api, alpha, anna):
    stranger_child = f.DependantFactory()
    api.force_authenticate(anna.user)
    response = api.post("/api/threads/", {"clinic": "alpha", "patient": stranger_child.pk}, format="json")
    assert response.status_code == 400 and "not in your family" in response.json()["detail"]
    assert not Thread.objects.exists()


def test_patient_writes_to_their_doctor(api, alpha, anna):
    f.ConsentRecordFactory(patient=anna, clinic=alpha.clinic, document=f.ConsentDocumentFactory(clinic=alpha.clinic))
    api.force_authenticate(anna.user)
    opened = api.post("/api/threads/", {"clinic": "alpha", "doctor": alpha.doctor.pk}, format="json")
    assert opened.status_code == 201
    thread = Thread.objects.get(pk=opened.json()["id"])
    send(api, thread, "After the filling my tooth aches")
    api.force_authenticate(alpha.doctor_user)
    assert [t["id"] for t in api.get("/api/threads/").json()["results"]] == [thread.pk]
    assert send(api, thread, "Rinse with warm salt water, come tomorrow").status_code == 201


# --- the store's rules, on whichever database the suite runs (PostgreSQL: one statement; SQLite: the ORM)


def test_a_patient_back_in_a_snoozed_thread_reopens_it_and_keeps_the_first_waiting_time(alpha, anna, anna_thread):
    from datetime import timedelta

    from django.utils import timezone

    from messaging import services

    services.send_message(thread=anna_thread, actor=anna.user, text="First question")
    anna_thread.refresh_from_db()
    waiting = anna_thread.waiting_since
    Thread.objects.filter(pk=anna_thread.pk).update(status=Thread.Status.SNOOZED, snoozed_until=timezone.now() + timedelta(days=1))
    message, created = services.send_message(thread=anna_thread, actor=anna.user, text="Are you there?")
    anna_thread.refresh_from_db()
    assert created and message.seq == 2
    assert (anna_thread.status, anna_thread.snoozed_until, anna_thread.waiting_since) == (Thread.Status.OPEN, None, waiting)
    assert (anna_thread.staff_unread, anna_thread.patient_read_seq, anna_thread.patient_unread) == (2, 2, 0)
    # what send_message returns is the row as written: the broadcast and the caller see the new counters
    assert (message.thread.last_seq, message.thread.status, message.thread.staff_unread) == (2, Thread.Status.OPEN, 2)


def test_a_sensitive_thread_keeps_no_preview_and_the_first_response_time_is_kept(alpha, anna):
    from messaging import services

    thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna, sensitive=True)
    services.send_message(thread=thread, actor=alpha.operator, text="Your biopsy results are in")
    thread.refresh_from_db()
    first = thread.first_response_at
    services.send_message(thread=thread, actor=alpha.operator, text="Please call us")
    thread.refresh_from_db()
    assert thread.last_message_preview == "" and thread.first_response_at == first is not None
    assert (thread.last_seq, thread.last_public_seq, thread.patient_unread, thread.staff_read_seq) == (2, 2, 2, 2)


def test_a_private_note_moves_only_the_staff_counters(alpha, anna, anna_thread):
    from messaging import services

    services.send_message(thread=anna_thread, actor=anna.user, text="Hello")
    services.send_message(thread=anna_thread, actor=alpha.operator, text="Owes 3000", kind=Message.Kind.NOTE)
    anna_thread.refresh_from_db()
    assert (anna_thread.last_seq, anna_thread.last_public_seq, anna_thread.last_message_preview) == (2, 1, "Hello")
    assert anna_thread.waiting_since is not None and anna_thread.patient_unread == 0 and anna_thread.first_response_at is None
    assert not Notification.objects.exists()  # no one is told about a note without a mention


def test_a_system_message_needs_no_consent_counts_for_the_patient_and_tells_the_guardian(alpha, anna):
    from messaging import services

    child = f.DependantFactory(guardian=anna)
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=child, consent=False)
    message, created = services.send_message(thread=thread, actor=None, author=Message.Author.SYSTEM, text="Your visit is tomorrow")
    thread.refresh_from_db()
    assert created and message.sender is None and thread.patient_unread == 1 and thread.last_public_seq == 1
    assert Notification.objects.get().recipient == anna.user  # the child has no account: the guardian's


def test_a_patient_message_tells_the_assignee_else_the_doctor_when_offline(alpha, anna):
    from django.utils import timezone

    from messaging import services
    from messaging.models import SocketConnection

    doctor_thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    services.send_message(thread=doctor_thread, actor=anna.user, text="My tooth hurts")
    assert list(Notification.objects.values_list("recipient", flat=True)) == [alpha.doctor_user.pk]

    Thread.objects.filter(pk=doctor_thread.pk).update(assigned_to=alpha.operator)
    services.send_message(thread=doctor_thread, actor=anna.user, text="Still hurts")
    assert Notification.objects.filter(recipient=alpha.operator).count() == 1

    SocketConnection.objects.create(user=alpha.operator, channel_name="specific.x!1", seen_at=timezone.now())
    services.send_message(thread=doctor_thread, actor=anna.user, text="Hello?")
    assert Notification.objects.count() == 2  # the assignee is online now: no third row


def test_a_resend_after_withdrawal_returns_the_stored_message(alpha, anna, anna_thread):
    from messaging import services
    from patients.services import consent_withdraw

    message, _created = services.send_message(thread=anna_thread, actor=anna.user, text="Hi", client_msg_id="once")
    consent_withdraw(patient=anna, clinic=alpha.clinic, ip="127.0.0.1", user_agent="test")
    again, created = services.send_message(thread=anna_thread, actor=anna.user, text="Hi", client_msg_id="once")
    assert not created and again.pk == message.pk
    anna_thread.refresh_from_db()
    assert anna_thread.last_seq == 1 and anna_thread.staff_unread == 1


@pytest.mark.parametrize(
    "committed",
    [
        pytest.param(False, id="in-a-transaction"),
        # outside any transaction PostgreSQL sends a plain message as one statement, no BEGIN/COMMIT
        pytest.param(True, id="autocommit", marks=pytest.mark.django_db(transaction=True)),
    ],
)
def test_resends_and_consent_refusals_do_not_use_up_the_sending_limit(clock, monkeypatch, alpha, anna, anna_thread, committed):
    from django.core.exceptions import PermissionDenied
    from django.db import connection

    from messaging import services
    from patients.services import ConsentRequired, consent_withdraw

    assert connection.in_atomic_block is not committed
    # `clock` first: the consent, the sends and the withdrawal share one stopped minute (one throttle window)
    monkeypatch.setattr(services.throttle, "SEND_LIMIT_PER_MINUTE", 3)

    def send_as_anna(client_msg_id):
        return services.send_message(thread=anna_thread, actor=anna.user, text=f"text {client_msg_id}", client_msg_id=client_msg_id)

    first, created = send_as_anna("a")
    assert created and [send_as_anna("a") for _ in range(4)] == [(first, False)] * 4
    assert send_as_anna("b")[1] and send_as_anna("c")[1]  # the resends did not count: three new ones fit
    with pytest.raises(services.SendingTooFast):
        send_as_anna("d")
    assert send_as_anna("c")[0].seq == 3  # a resend is answered even at the limit
    consent_withdraw(patient=anna, clinic=alpha.clinic, ip="127.0.0.1", user_agent="test")
    with pytest.raises(ConsentRequired):  # at the limit, the reason the patient can act on comes first
        send_as_anna("e")
    with pytest.raises(PermissionDenied):
        services.send_message(thread=anna_thread, actor=anna.user, text="note", kind=Message.Kind.NOTE)
    assert list(Message.objects.order_by("seq").values_list("client_msg_id", flat=True)) == ["a", "b", "c"]
    anna_thread.refresh_from_db()
    assert (anna_thread.last_seq, anna_thread.staff_unread) == (3, 3)
