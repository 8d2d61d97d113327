"""Random and hostile frames against /ws/ through the real ASGI stack: the socket survives every one.

A seeded generator (the same frames on every run) sends binary frames, broken JSON, deep
nesting, oversized strings, NUL characters, a wrong type in every field of every frame
type, unknown types, out-of-range cursors, non-objects and threads of someone else.
After each frame the socket must still answer a ping, a frame that cannot be served
must have been answered with an error frame, and no message may have been stored.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from messaging.models import Message
from tests import factories as f
from tests.messaging.sockets import TIMEOUT, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio, pytest.mark.usefixtures("socket_thread_closed")]

FRAMES_PER_SOCKET = 160
BIGINT = 2**63 - 1


@dataclass
class Frame:
    text: str | None = None
    binary: bytes | None = None
    refused: bool = True  # False: a frame the server may serve (it must still not break the socket)
    what: str = ""


BAD = {
    "id": [None, 0, -1, -BIGINT, BIGINT + 1, 10**30, "1", "abc", "", 1.5, True, False, [], [1], {}, {"id": 1}],
    "text": [None, 1, -1, 1.5, True, [], ["hello"], {}, {"text": "hello"}],
    "flag": [None, 0, 1, "true", "", [], {}, [True]],
    "seq": [None, -1, -BIGINT, BIGINT + 1, 10**30, "1", 1.5, [], {}],
    "seq_or_null": [-1, BIGINT + 1, "3", 2.5, True, [], {}],
    "ids": [None, 1, "1", {}, [0], [-1], ["1"], [BIGINT + 1], [[1]], [None], [True]],
    "cursors": [[], "1", 1, True, {"a": 1}, {"-1": 1}, {"0": 1}, {"1": -1}, {"1": "2"}, {"1": None}, {"1": BIGINT + 1},
                {str(10**30): 1}, {"1": [1]}, {"1": 1.5}, {"²": 1}],
}  # fmt: skip

# The fields of each frame type and the kind of value each takes (messaging.consumers.FRAME_FIELDS).
FIELDS = {
    "message.send": {"thread": "id", "text": "text", "client_msg_id": "text", "attachments": "ids", "note": "flag"},
    "read": {"thread": "id", "seq": "seq_or_null"},
    "delivered": {"thread": "id", "seq": "seq"},
    "typing": {"thread": "id", "state": "flag"},
    "viewing": {"thread": "id", "state": "flag"},
    "resume": {"cursors": "cursors"},
}


def _valid(kind: str, thread_id: int, rng: random.Random) -> dict[str, Any]:
    """A frame that would be served: the base every 'one wrong field' frame is made from."""
    return {
        "message.send": {"type": "message.send", "thread": thread_id, "text": "Hello from the fuzz", "client_msg_id": f"fz-{rng.random()}"},
        "read": {"type": "read", "thread": thread_id, "seq": 0},
        "delivered": {"type": "delivered", "thread": thread_id, "seq": 0},
        "typing": {"type": "typing", "thread": thread_id, "state": True},
        "viewing": {"type": "viewing", "thread": thread_id, "state": True},
        "resume": {"type": "resume", "cursors": {str(thread_id): 0}},
    }[kind]


def _deep(rng: random.Random) -> str:
    depth = rng.choice([33, 100, 1000, 5000, 20000])
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    inner = '{"a":' * depth + "1" + "}" * depth
    return '{"type": "message.send", "thread": 1, "text": ' + inner + "}"


def _broken_json(rng: random.Random) -> str:
    while True:
        candidate = rng.choice(
            [
                '{"type": "ping"',
                "{",
                "}",
                "[",
                "nul",
                "tru",
                '{"type": "ping",}',
                "{'type': 'ping'}",
                '{"type": NaN}',
                '{"type": Infinity}',
                '{"type": "ping"} trailing',
                '"\\ud800"x',
                "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 80))),
            ]
        )
        try:
            json.loads(candidate)
        except ValueError:
            return candidate


def frames(*, thread_id: int, foreign_thread_id: int, rng: random.Random, count: int):

    def binary():
        return Frame(binary=bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))), what="binary")

    def broken():
        return Frame(text=_broken_json(rng), what="broken json")

    def deep():
        return Frame(text=_deep(rng), what="deep")

    def huge():
        frame = _valid("message.send", thread_id, rng)
        frame["text"] = "x" * rng.randint(64 * 1024, 200 * 1024)
        return Frame(text=json.dumps(frame), what="huge")

    def nul():
        frame = _valid(rng.choice(list(FIELDS)), thread_id, rng)
        where = rng.choice(["text", "client_msg_id", "type", "key", "ref"])
        if where == "key":
            frame["n\x00"] = 1
        elif where == "type":
            frame["type"] = frame["type"] + "\x00"
        else:
            frame[where] = "a\x00b"
        return Frame(text=json.dumps(frame), what=f"nul in {where}")

    def wrong_type():
        kind = rng.choice(list(FIELDS))
        frame = _valid(kind, thread_id, rng)
        field = rng.choice(list(FIELDS[kind]))
        frame[field] = rng.choice(BAD[FIELDS[kind][field]])
        return Frame(text=json.dumps(frame), what=f"{kind}.{field}={frame[field]!r}"[:80])

    def missing():
        kind = rng.choice(["message.send", "read", "delivered", "typing", "viewing"])
        frame = _valid(kind, thread_id, rng)
        del frame["thread"]
        return Frame(text=json.dumps(frame), what=f"{kind} without thread")

    def unknown():
        kind = rng.choice(["subscribe", "message.delete", "PING", "", " ping", "x" * 5000, 7, None, ["ping"], {"type": "ping"}, True])
        return Frame(text=json.dumps({"type": kind, "thread": thread_id}), what=f"type {kind!r}"[:60])

    def not_an_object():
        return Frame(text=json.dumps(rng.choice([[], [{"type": "ping"}], "ping", 42, None, True, 1.5, {}])), what="not an object")

    def someone_elses():
        kind = rng.choice(["message.send", "read", "delivered", "typing"])
        frame = _valid(kind, rng.choice([foreign_thread_id, BIGINT]), rng)
        return Frame(text=json.dumps(frame), what=f"{kind} to a thread not theirs")

    def far_cursor():
        """In range, so served: a resume from a seq beyond anything stored returns nothing."""
        frame = {"type": "resume", "cursors": {str(rng.choice([thread_id, foreign_thread_id, BIGINT])): rng.choice([BIGINT, 10**12])}}
        return Frame(text=json.dumps(frame), refused=False, what="resume far ahead")

    makers = [
        binary,
        broken,
        deep,
        huge,
        nul,
        wrong_type,
        wrong_type,
        wrong_type,
        missing,
        unknown,
        not_an_object,
        someone_elses,
        far_cursor,
    ]
    for _ in range(count):
        yield rng.choice(makers)()


async def _answer_until_pong(communicator) -> list[dict]:
    """Every event up to the pong that answers our ping: proof the socket is open and serving."""
    await communicator.send_json_to({"type": "ping"})
    events = []
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        assert output["type"] == "websocket.send", f"the socket closed: {output}"
        event = json.loads(output["text"])
        if event["type"] == "pong":
            return events
        events.append(event)


@pytest.mark.parametrize("role", ["patient", "operator"])
async def test_the_socket_survives_hostile_frames_and_stores_nothing(alpha, beta, role):
    @sync_to_async
    def build():
        anna = f.PatientFactory(full_name="Anna Petrova", phone="+79160000001")
        thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
        foreign = f.ThreadFactory(clinic=beta.clinic, patient=f.PatientFactory(full_name="Boris Betov", phone="+79160000002"))
        return (anna.user if role == "patient" else alpha.operator), thread, foreign

    user, thread, foreign = await build()
    communicator = await open_socket(user)
    rng = random.Random(f"socket-fuzz-{role}")
    stored_before = await sync_to_async(Message.objects.count)()

    for frame in frames(thread_id=thread.pk, foreign_thread_id=foreign.pk, rng=rng, count=FRAMES_PER_SOCKET):
        if frame.binary is not None:
            await communicator.send_to(bytes_data=frame.binary)
        else:
            await communicator.send_to(text_data=frame.text)
        events = await _answer_until_pong(communicator)
        errors = [e for e in events if e["type"] == "error"]
        if frame.refused:
            assert errors, f"no error frame for {frame.what}"
            assert all(e.get("reason") for e in errors), errors
        assert await sync_to_async(Message.objects.count)() == stored_before, f"{frame.what} stored a message"

    # And the socket still serves a good frame.
    await communicator.send_json_to({"type": "message.send", "thread": thread.pk, "text": "Still here", "client_msg_id": "after-fuzz"})
    events = await _answer_until_pong(communicator)
    assert [e for e in events if e["type"] == "message.ack"][0]["client_msg_id"] == "after-fuzz"
    await communicator.disconnect()
