"""/ws/ through the real ASGI stack: who may connect (Origin, session cookie), the greeting, bad frames.

Each test signs a user in the way the portal or the admin would (a session row
and its cookie) and opens the socket through clinic_crm.asgi.application, so
AllowedHostsOriginValidator and AuthMiddlewareStack run as in production.
Works with the in-memory channel layer and with channels_redis (REDIS_URL).
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from clinic_crm.asgi import application
from tests import factories as f
from tests.messaging.sockets import TIMEOUT, open_socket, session_cookie, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio, pytest.mark.usefixtures("socket_thread_closed")]


def hello(kind: str) -> dict:
    return {"type": "hello", "as": kind, "heartbeat": settings.SOCKET_HEARTBEAT_SECONDS}


async def refused(communicator: WebsocketCommunicator) -> int:
    """The close code of a handshake that must fail."""
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert connected is False
    await communicator.disconnect()
    return code


async def test_anonymous_visitor_is_refused_with_4401():
    assert await refused(socket()) == 4401


async def test_a_stale_session_cookie_is_refused_with_4401():
    assert await refused(socket(cookie=b"sessionid=not-a-session-anyone-was-given")) == 4401


async def test_signed_in_user_who_is_neither_staff_nor_patient_is_refused_with_4401():
    stranger = await sync_to_async(f.UserFactory)(username="stranger")
    assert await refused(socket(cookie=await session_cookie(stranger))) == 4401


async def test_patient_is_greeted_as_patient(pavel):
    communicator = socket(cookie=await session_cookie(pavel.user))
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected is True
    assert await communicator.receive_json_from(timeout=TIMEOUT) == hello("patient")
    await communicator.disconnect()


@pytest.mark.parametrize("role", ["owner", "operator", "doctor"])
async def test_staff_member_is_greeted_as_staff(alpha, role):
    communicator = socket(cookie=await session_cookie(alpha.user(role)))
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected is True
    assert await communicator.receive_json_from(timeout=TIMEOUT) == hello("staff")
    await communicator.disconnect()


async def test_malformed_json_gets_an_error_and_the_socket_stays_open(alpha):
    communicator = await open_socket(alpha.manager)

    await communicator.send_to(text_data='{"type": "ping"')
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "error",
        "code": "bad_frame",
        "reason": "Frame is not valid JSON.",
    }

    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    await communicator.disconnect()


async def test_frame_that_is_not_an_object_with_a_type_gets_an_error(pavel):
    communicator = await open_socket(pavel.user)

    for frame in (["ping"], {"kind": "ping"}, {"type": 7}):
        await communicator.send_json_to(frame)
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error",
            "code": "bad_frame",
            "reason": "Frame must be a JSON object with a 'type'.",
        }, frame
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    await communicator.disconnect()


async def test_unknown_frame_type_gets_an_error_naming_it(alpha):
    communicator = await open_socket(alpha.doctor_user)

    await communicator.send_json_to({"type": "subscribe-everything"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "error",
        "code": "unknown_type",
        "reason": "Unknown frame type 'subscribe-everything'.",
    }
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    await communicator.disconnect()


async def test_foreign_origin_is_refused_even_with_a_valid_session(alpha):
    cookie = await session_cookie(alpha.owner)
    code = await refused(socket(cookie=cookie, origin=b"http://evil.example"))
    # Refused by the origin check before the consumer ran (the consumer's own refusal is 4401).
    assert code != 4401

    # The same session from an allowed origin is let in: the refusal above was the Origin's doing.
    communicator = socket(cookie=cookie)
    assert (await communicator.connect(timeout=TIMEOUT))[0] is True
    await communicator.disconnect()


async def test_missing_origin_is_refused(alpha):
    communicator = WebsocketCommunicator(application, "/ws/", headers=[(b"cookie", await session_cookie(alpha.owner))])
    assert await refused(communicator) != 4401
