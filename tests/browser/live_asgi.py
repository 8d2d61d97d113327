"""Fixtures for browser tests that need the socket (/ws/): the page against Daphne, not WSGI.

The server itself is tests/browser/asgi_server.py (one Daphne per test process, in a
thread: Twisted's reactor cannot be restarted, so every test module must share it).
Use from a test module:

    from tests.browser.live_asgi import live_asgi, open_live  # noqa: F401  (fixtures)

    def test_x(open_live, live_asgi):
        page = open_live(viewport=DESKTOP)
        live_asgi.call(services.send_message, thread=t, sender=u, text="Hi")

`live_asgi.call` runs a function where the server runs Django code (a worker thread of
its event loop), so the realtime events it sends after commit go through the loop that
owns the sockets' queues; the test thread has Playwright's own loop running in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.sync_api import Browser, Page

from tests.browser.asgi_server import asgi_server as process_server


class LiveAsgi:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.url: str = server.url

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run fn(*args, **kwargs) in the server's worker thread and return its result."""
        loop: asyncio.AbstractEventLoop = self.server.reactor._asyncioEventloop
        future = asyncio.run_coroutine_threadsafe(sync_to_async(fn, thread_sensitive=True)(*args, **kwargs), loop)
        return future.result(timeout=20)


@pytest.fixture(scope="session")
def live_asgi(django_db_setup, django_db_blocker) -> LiveAsgi:
    with django_db_blocker.unblock():
        return LiveAsgi(process_server())


@pytest.fixture
def open_live(chromium: Browser, live_asgi: LiveAsgi, transactional_db) -> Iterator[Callable[..., Page]]:
    """Open a page against the ASGI server in a fresh browser context: open_live(viewport=DESKTOP)."""
    from tests.browser.conftest import page_opener

    yield from page_opener(chromium, live_asgi.url)
