"""The real ASGI stack (HTTP + /ws/) served by Daphne in a thread of the test process.

pytest-django's `live_server` speaks WSGI only, so pages that keep a WebSocket open
need this instead: the `live_asgi` fixture (tests/browser/conftest.py) hands it out.
Daphne runs the project's application (static files added, as runserver would) in a
background thread, once per test process: Twisted's reactor cannot be restarted, so
every test module shares it.

Running in-process means the in-memory channel layer is shared with the test. Events
must be sent from the server's own event loop, though (that layer is not thread-safe,
and the test thread has Playwright's loop running in it), so server-side actions in a
test go through `live_asgi.call(fn, ...)`: fn runs in the thread where Django runs
requests, and what it schedules with on_commit reaches the sockets as a request's would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

# Seconds Daphne may take to start listening, and one server-side call to return: generous,
# since the machine running the suite may be busy.
TIMEOUT = 20

_server: AsgiServer | None = None
_lock = threading.Lock()


class AsgiServer:
    def __init__(self) -> None:
        # Importing daphne.server installs Twisted's asyncio reactor: keep it inside here.
        from channels.routing import ProtocolTypeRouter
        from daphne.server import Server
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.core.asgi import get_asgi_application
        from twisted.internet import reactor

        from clinic_crm.asgi import application

        self.reactor = reactor
        app = ProtocolTypeRouter(
            {
                "http": ASGIStaticFilesHandler(get_asgi_application()),
                "websocket": application.application_mapping["websocket"],
            }
        )
        self.daphne = Server(
            application=app,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            verbosity=0,
        )
        self.thread = threading.Thread(target=self.daphne.run, name="daphne-live-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not self.daphne.listening_addresses:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("Daphne did not start listening")
            time.sleep(0.05)
        host, port = self.daphne.listening_addresses[0]
        self.url = f"http://{host}:{port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.reactor._asyncioEventloop

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run fn(*args, **kwargs) where the server runs Django code, and return its result."""
        from asgiref.sync import sync_to_async

        async def run() -> Any:
            return await sync_to_async(fn)(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(TIMEOUT)


def asgi_server() -> AsgiServer:
    """The process's server, started on first use."""
    global _server
    with _lock:
        if _server is None:
            _server = AsgiServer()
        return _server
