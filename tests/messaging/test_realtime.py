"""Conversations over /ws/: live delivery, notes kept from patients, reconnect without loss, tenancy, bad frames.

Runs on the in-memory channel layer locally and on channels_redis in CI (REDIS_URL).
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

from messaging import services
from messaging.models import Message
from tests import factories as f
from tests.messaging.sockets import next_of, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio, pytest.mark.usefixtures("socket_thread_closed")]


@sync_to_async
def say(thread, user, text, **kwargs):
    message, _ = services.send_message(thread=thread, actor=user, text=text, **kwargs)
    return message


@pytest_asyncio.fixture
async def world(alpha, beta):
    @sync_to_async
    def build():
        anna = f.PatientFactory(full_name="Anna Petrova", phone="+79160000001")
        return {
            "alpha": alpha,
            "beta": beta,
            "anna": anna,
            "thread": f.ThreadFactory(clinic=alpha.clinic, patient=anna),
            "doctor_thread": f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind="doctor", doctor=alpha.doctor),
            "boris_thread": f.ThreadFactory(clinic=beta.clinic, patient=f.PatientFactory(phone="+79160000002")),
        }

    return await build()


async def test_patient_message_reaches_front_desk_live_and_not_other_clinics(world):
    olga = await open_socket(world["alpha"].operator)
    oscar = await open_socket(world["beta"].operator)
    anna = await open_socket(world["anna"].user)
    await say(world["thread"], world["anna"].user, "Hello, is Dr Dima in today?")
    event = await next_of(olga, "message.new")
    assert (event["thread"], event["seq"], event["text"]) == (world["thread"].pk, 1, "Hello, is Dr Dima in today?")
    assert event["author"] == "patient" and event["author_name"]
    assert await oscar.receive_nothing(timeout=0.3)
    own = await next_of(anna, "message.new")  # her other tabs see it too
    assert own["seq"] == 1
    for ws in (olga, oscar, anna):
        await ws.disconnect()


async def test_private_note_reaches_staff_but_never_the_patient(world):
    anna = await open_socket(world["anna"].user)
    mark = await open_socket(world["alpha"].manager)
    await say(world["thread"], world["alpha"].operator, "Check her allergy card first", kind="note")
    await say(world["thread"], world["alpha"].operator, "Dr Dima is in from 14:00")
    staff_seen = [(await next_of(mark, "message.new"))["kind"] for _ in range(2)]
    assert staff_seen == ["note", "text"]
    patient_event = await next_of(anna, "message.new")
    assert patient_event["text"] == "Dr Dima is in from 14:00" and patient_event["seq"] == 2
    assert "data" not in patient_event and "mentions" not in patient_event
    assert await anna.receive_nothing(timeout=0.3)
    await anna.disconnect()
    await mark.disconnect()


async def test_doctor_hears_own_doctor_thread_only(world):
    dima = await open_socket(world["alpha"].doctor_user)
    await say(world["thread"], world["anna"].user, "To the clinic")
    await say(world["doctor_thread"], world["anna"].user, "To the doctor")
    event = await next_of(dima, "message.new")
    assert (event["thread"], event["text"]) == (world["doctor_thread"].pk, "To the doctor")
    assert await dima.receive_nothing(timeout=0.3)
    await dima.disconnect()


async def test_reconnect_with_an_old_seq_receives_exactly_the_missed_messages_in_order(world):
    thread, olga = world["thread"], world["alpha"].operator
    await say(thread, olga, "one")
    anna = await open_socket(world["anna"].user)
    assert await anna.receive_nothing(timeout=0.2)  # "one" was sent before she connected: she has it from the page
    await anna.disconnect()  # the train enters a tunnel
    await say(thread, olga, "two")
    await say(thread, olga, "internal: she called twice", kind="note")
    await say(thread, olga, "three")
    anna = await open_socket(world["anna"].user)
    await anna.send_json_to({"type": "resume", "cursors": {str(thread.pk): 1, str(world["boris_thread"].pk): 0}})
    caught_up = [await next_of(anna, "message.new"), await next_of(anna, "message.new")]
    done = await next_of(anna, "resumed")
    assert [(m["seq"], m["text"]) for m in caught_up] == [(2, "two"), (4, "three")]
    assert done == {"type": "resumed", "reload": [], "count": 2}  # Beta's thread silently skipped
    # …and then live events continue on the same socket.
    await say(thread, olga, "four")
    assert (await next_of(anna, "message.new"))["seq"] == 5
    await anna.disconnect()


async def test_send_over_the_socket_is_acknowledged_and_a_resend_is_not_duplicated(world):
    thread = world["thread"]
    anna = await open_socket(world["anna"].user)
    frame = {"type": "message.send", "thread": thread.pk, "text": "Can I come at 5?", "client_msg_id": "tab-1-7"}
    await anna.send_json_to(frame)
    ack = await next_of(anna, "message.ack")
    assert ack == {"type": "message.ack", "thread": thread.pk, "seq": 1, "client_msg_id": "tab-1-7", "duplicate": False}
    await anna.send_json_to(frame)  # the network hiccuped: the client resends
    again = await next_of(anna, "message.ack")
    assert again["seq"] == 1 and again["duplicate"] is True
    assert await sync_to_async(Message.objects.filter(thread=thread).count)() == 1
    await anna.disconnect()


async def test_foreign_thread_frames_get_an_error_and_the_socket_stays_open(world):
    anna = await open_socket(world["anna"].user)
    boris_thread = world["boris_thread"]
    for frame in (
        {"type": "message.send", "thread": boris_thread.pk, "text": "hi", "client_msg_id": "x1"},
        {"type": "read", "thread": boris_thread.pk},
        {"type": "typing", "thread": boris_thread.pk, "state": True},
    ):
        await anna.send_json_to(frame)
        error = await next_of(anna, "error")
        assert error["code"] == "not_found" and error["frame"] == frame["type"]
    await anna.send_json_to({"type": "ping"})
    assert await next_of(anna, "pong") == {"type": "pong"}
    assert await sync_to_async(Message.objects.count)() == 0
    await anna.disconnect()


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ({"type": "message.send", "text": "no thread"}, "bad_frame", "Malformed"),
        ({"type": "message.send", "thread": "abc", "text": "x"}, "bad_frame", "Malformed"),
        ({"type": "message.send", "thread": None, "text": "x"}, "bad_frame", "Malformed"),
        ({"type": "message.send", "thread": "THREAD", "text": "x" * 4001, "client_msg_id": "long"}, "invalid", "too long"),
        ({"type": "message.send", "thread": "THREAD", "text": "  "}, "invalid", "Write a message"),
        ({"type": "resume", "cursors": ["not", "a", "map"]}, "bad_frame", "Malformed"),
        ({"type": "viewing", "thread": "THREAD"}, "forbidden", "Only staff"),
    ],
)
async def test_malformed_frames_get_a_reason_and_nothing_is_written(world, frame, code, words):
    anna = await open_socket(world["anna"].user)
    frame = {k: (world["thread"].pk if v == "THREAD" else v) for k, v in frame.items()}
    await anna.send_json_to(frame)
    error = await next_of(anna, "error")
    assert error["code"] == code and words in error["reason"], error
    await anna.send_json_to({"type": "ping"})
    assert (await next_of(anna, "pong"))["type"] == "pong"
    assert await sync_to_async(Message.objects.count)() == 0
    await anna.disconnect()


async def test_typing_crosses_sides_and_staff_see_who_else_is_replying(world):
    thread = world["thread"]
    anna = await open_socket(world["anna"].user)
    olga = await open_socket(world["alpha"].operator)
    mark = await open_socket(world["alpha"].manager)
    await anna.send_json_to({"type": "typing", "thread": thread.pk, "state": True})
    assert await next_of(olga, "typing") == {"type": "typing", "thread": thread.pk, "side": "patient", "state": True}
    await olga.send_json_to({"type": "viewing", "thread": thread.pk})
    presence = await next_of(mark, "presence")
    assert presence["viewers"] == ["olga"] and presence["replying"] == []
    await olga.send_json_to({"type": "typing", "thread": thread.pk, "state": True})
    assert (await next_of(anna, "typing"))["side"] == "staff"
    presence = await next_of(mark, "presence")
    assert presence["replying"] == ["olga"]  # the soft lock: Mark sees Olga is answering
    await olga.disconnect()  # closing the tab drops her mark
    assert (await next_of(mark, "presence"))["viewers"] == []
    await anna.disconnect()
    await mark.disconnect()


async def test_read_receipts_reach_both_sides(world):
    thread = world["thread"]
    await say(thread, world["alpha"].operator, "Your X-ray is ready")
    olga = await open_socket(world["alpha"].operator)
    anna = await open_socket(world["anna"].user)
    await anna.send_json_to({"type": "read", "thread": thread.pk})
    assert await next_of(olga, "message.read") == {"type": "message.read", "thread": thread.pk, "side": "patient", "seq": 1}
    assert (await next_of(anna, "message.read"))["seq"] == 1
    await thread.arefresh_from_db()
    assert thread.patient_unread == 0 and thread.patient_read_seq == 1
    await olga.disconnect()
    await anna.disconnect()


async def test_an_online_patient_gets_no_offline_notification(world):
    from notifications.models import Notification

    anna = await open_socket(world["anna"].user)
    await say(world["thread"], world["alpha"].operator, "See you at 5")
    await next_of(anna, "message.new")
    assert not await sync_to_async(Notification.objects.exists)()
    await anna.disconnect()
    await say(world["thread"], world["alpha"].operator, "Don't forget your passport")
    assert await sync_to_async(Notification.objects.filter(recipient=world["anna"].user).count)() == 1


async def test_reasons_come_in_the_browsers_language(world):
    anna = await open_socket(world["anna"].user, language=b"ru-RU,ru;q=0.9,en;q=0.5")
    await anna.send_json_to({"type": "message.send", "thread": world["thread"].pk, "text": " "})
    assert "Напишите" in (await next_of(anna, "error"))["reason"]
    await anna.disconnect()
