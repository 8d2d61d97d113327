"""The database connection pool's limit as clients see it: 503 with Retry-After, or a socket closed with 4503.

Each daphne process has a bounded pool (settings: DB_POOL_*). When every connection is
in use, a request waits up to DB_POOL_TIMEOUT for one; then psycopg_pool raises
PoolTimeout, which Django wraps in its own OperationalError. That is the server being
busy, not broken: the client is told to come back shortly, and the log gets a warning
line, not a traceback.

An HTTP request takes its connection in PoolTimeoutMiddleware, before any other layer
reads the session or the user: an exception raised inside another middleware would be
turned into a 500 by Django before anyone outside could see it. The connection then
stays with the request's thread until the request ends (Django closes it on
request_finished, which with the pool gives it back), so the wait happens once, at the
door. The DRF exception handler (clinic_crm.api) and process_exception answer the same
way if a view reconnects later (a connection closed after a failed rollback).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from rest_framework.response import Response

logger = logging.getLogger(__name__)

# A burst that filled the pool drains within seconds; a client retrying at once would only
# join the queue it has just left.
RETRY_AFTER_SECONDS = 5

# HTTP's 503 in the application's range of close codes, as 4401 mirrors 401 (daphne's WebSocket
# library lets an application send only 1000 and 3000–4999, so not the registry's 1013). The page's
# socket (static/realtime/socket.js) reconnects after its growing back-off, then resumes.
SOCKET_CLOSE_BUSY = 4503


def is_pool_timeout(exc: BaseException | None) -> bool:
    """Whether exc is, or was caused by, psycopg_pool's PoolTimeout (Django re-raises it as OperationalError)."""
    from psycopg_pool import PoolTimeout

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PoolTimeout):
            return True
        seen.add(id(exc))
        exc = exc.__cause__
    return False


def busy_body() -> dict[str, str]:
    """The API's error format (clinic_crm.api): a stable code and a sentence in the active language."""
    return {"code": "busy", "detail": _("The server is busy. Please try again in a few seconds.")}


def busy_headers() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def log_busy(where: str) -> None:
    logger.warning("No database connection within the pool's timeout: answered %s as busy", where)


def busy_response(request: HttpRequest) -> HttpResponse:
    """503 for one request: JSON under /api/, a short page elsewhere. Logged here, once, as a warning."""
    log_busy(request.path)
    if request.path.startswith("/api/"):
        response = HttpResponse(json.dumps(busy_body(), ensure_ascii=False), status=503, content_type="application/json")
    else:
        response = HttpResponse(render_to_string("busy.html", {"detail": busy_body()["detail"]}), status=503)
    for name, value in busy_headers().items():
        response[name] = value
    # Django's request log would add an ERROR line for any 5xx; the warning above says it all.
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's flag: log_response() then stays quiet
    return response


def busy_api_response(request: HttpRequest) -> Response:
    """The same 503 from inside a DRF view (its exception handler sees the error before any middleware)."""
    log_busy(request.path)
    response = Response(busy_body(), status=503, headers=busy_headers())
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class PoolTimeoutMiddleware:
    """Take the request's database connection first; answer 503 if the pool has none in time."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if connection.settings_dict["OPTIONS"].get("pool"):
            try:
                connection.ensure_connection()
            except OperationalError as exc:
                if not is_pool_timeout(exc):
                    raise
                # LocaleMiddleware has not run yet: answer in the language the client asks for.
                with translation.override(translation.get_language_from_request(request)):
                    return busy_response(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return busy_response(request) if is_pool_timeout(exception) else None


class PoolTimeoutSocketMiddleware:
    """Around the socket stack: a pool timeout (session and user at connect, or a frame's query) closes with 4503."""

    def __init__(self, inner: Callable[..., Awaitable[Any]]) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> Any:
        state = {"accepted": False, "closed": False}

        async def tracked_receive() -> dict:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                state["closed"] = True
            return message

        async def tracked_send(message: dict) -> None:
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] == "websocket.close":
                state["closed"] = True
            await send(message)

        try:
            return await self.inner(scope, tracked_receive, tracked_send)
        except OperationalError as exc:
            if not is_pool_timeout(exc):
                raise
            log_busy(scope.get("path", "socket"))
            if state["closed"]:
                return None
            if not state["accepted"]:
                # Refusing the handshake would reach the page as a bare 1006; accepted, it gets the reason.
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": SOCKET_CLOSE_BUSY})
            return None
