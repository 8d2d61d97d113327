"""A real worker process killed (SIGKILL) while SMS.ru holds the SMS: the redelivered task never sends it again.

The worker is a separate `celery worker` process (prefork, one child) on the real
broker and the test database, so the kill is a real one: the child dies in the middle
of the provider call, the parent requeues the task (acks_late + reject_on_worker_lost)
and a fresh child runs it. respx cannot reach into another process, so SMS.ru is a
small HTTP double on 127.0.0.1 (SMSRU_API_URL) that records each request and keeps
the first one waiting. Needs PostgreSQL and Redis (a worker process cannot see
SQLite's in-memory test database or the in-memory broker): it runs in CI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation

from clinic_crm.celery import app as celery_app
from notifications.models import Delivery, DeliveryAttempt, Notification, Preference
from notifications.tasks import dispatch_notifications
from tests.notifications.test_worker import _wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or connection.vendor != "postgresql", reason="a worker process needs PostgreSQL and Redis (CI has both)"
    ),
]


class FakeSmsRu:
    """SMS.ru's send endpoint: records every request; those `hold` picks (by number, from 1) get their answer only
    when `release` is set, and `held` counts them."""

    def __init__(self, hold=lambda number: number == 1) -> None:
        self.requests: list[dict[str, str]] = []
        self.received = threading.Event()
        self.release = threading.Event()
        self.answered = threading.Event()
        self.held = 0
        self.hold = hold
        lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with lock:
                    fake.requests.append({k: v[0] for k, v in parse_qs(body).items()})
                    number = len(fake.requests)
                    held = fake.hold(number)
                    fake.held += held
                fake.received.set()
                if held:
                    fake.release.wait(60)  # the worker is killed while it waits here
                answer = {"status": "OK", "sms": {"79160000001": {"status": "OK", "sms_id": f"kill-{number}"}}}
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps(answer).encode())
                except OSError:
                    pass  # the caller is dead
                fake.answered.set()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def sms_ru() -> Iterator[FakeSmsRu]:
    fake = FakeSmsRu()
    yield fake
    fake.close()


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(sms_url: str, *, concurrency: int = 1, **env: str) -> subprocess.Popen:
    """`celery worker` in a session (process group) of its own, on the test database and the real broker."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SMS_PROVIDER": "smsru",
        "SMSRU_API_ID": "test-api-id",
        "SMSRU_API_URL": sms_url,
        "CONN_MAX_AGE": "0",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "clinic_crm", "worker", "-P", "prefork", "-c", str(concurrency), "-l", "warning",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("WORKER_LOG", os.devnull), "a"), start_new_session=True,  # WORKER_LOG: a file to debug with
    )  # fmt: skip


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def worker_process(sms_ru, settings) -> Iterator[subprocess.Popen]:
    """One worker process with one prefork child."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    process = start_worker(sms_ru.url)
    try:
        yield process
    finally:
        stop_worker(process)
        celery_app.conf.task_always_eager = True
        connection.close()


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def _worker_idle() -> bool:
    """The worker process holds no task, running or prefetched, and none waits in the broker's queue."""
    inspect = celery_app.control.inspect(timeout=1)
    active, reserved = inspect.active(), inspect.reserved()
    if not active or not reserved:
        return False  # no answer yet
    with celery_app.connection_for_write() as broker:
        waiting = broker.default_channel.queue_declare(queue=celery_app.conf.task_default_queue).message_count
    return waiting == 0 and not any(active.values()) and not any(reserved.values())


def test_a_worker_killed_while_the_provider_holds_the_sms_never_sends_it_twice(alpha, offline_reply, sms_ru, worker_process):
    notification = offline_reply()
    Notification.objects.filter(pk=notification.pk).update(urgent=True, not_before=None)  # whatever the hour
    Preference.objects.create(user=notification.recipient, email=False)  # one channel: the SMS

    dispatch_notifications.delay([notification.pk])  # through the broker to the worker process

    assert sms_ru.received.wait(60), "the worker never reached SMS.ru"
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == Delivery.Status.SENDING  # claimed and committed before the provider was called
    children = _children(worker_process.pid)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)  # dies waiting for SMS.ru's answer: the SMS is out, our status is not written

    # The parent requeues the task (reject_on_worker_lost); a fresh child claims the delivery and finds it mid-send.
    assert _wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status != Delivery.Status.SENDING, seconds=60)
    sms_ru.release.set()
    assert sms_ru.answered.wait(30) and _wait_for(_worker_idle, seconds=30)  # nothing left that could send a second SMS
    delivery.refresh_from_db()
    assert len(sms_ru.requests) == 1 and "Alpha Dental" in sms_ru.requests[0]["msg"]
    with translation.override(settings.LANGUAGE_CODE):  # the worker writes in the clinic's language
        reason = translation.gettext(
            "The worker stopped while sending; whether the SMS went out is unknown. Not sent again, to avoid a duplicate."
        )
    assert (delivery.status, delivery.last_error) == (Delivery.Status.UNKNOWN, reason)
    assert list(delivery.history.values_list("outcome", flat=True)) == [DeliveryAttempt.Outcome.INTERRUPTED]
