"""Sockets through the real ASGI stack (Origin check, session cookie, consumer), for tests."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from clinic_crm.asgi import application

ORIGIN = f"http://{settings.ALLOWED_HOSTS[0]}".encode()
TIMEOUT = 5  # seconds; the first connect pays for session and membership queries


@sync_to_async
def session_cookie(user) -> bytes:
    """Sign the user in as a browser would and return the Cookie header that browser would send."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def socket(*, cookie: bytes | None = None, origin: bytes = ORIGIN, language: bytes = b"en") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"accept-language", language)]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/", headers=headers)


async def open_socket(user, *, language: bytes = b"en") -> WebsocketCommunicator:
    """A connected socket for `user`, past its "hello"."""
    communicator = socket(cookie=await session_cookie(user), language=language)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    return communicator


async def next_of(communicator: WebsocketCommunicator, event_type: str, *, timeout: float = TIMEOUT) -> dict:
    """The next event of this type, skipping others (presence, delivered…)."""
    while True:
        event = await communicator.receive_json_from(timeout=timeout)
        if event["type"] == event_type:
            return event
