"""The database connection pool: a bound per process, and 503 with Retry-After when it is full, never a 500.

The server tests run daphne as a subprocess on the test database with a pool size of
their own, and count what PostgreSQL sees (pg_stat_activity) while bursts of
concurrent requests hit it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from appointments import selectors
from core.pool import RETRY_AFTER_SECONDS, SOCKET_CLOSE_BUSY

ROOT = Path(__file__).resolve().parents[2]

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the connection pool is PostgreSQL's (psycopg_pool); SQLite opens a file per thread. CI runs these on PostgreSQL",
)

CLIENT_BACKENDS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"


# --- settings ------------------------------------------------------------------------------------

POOL_VARIABLES = ("CONN_MAX_AGE", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE", "DB_POOL_TIMEOUT")


def _settings_with(monkeypatch, **env: str) -> dict:
    """clinic_crm/settings.py executed afresh for PostgreSQL with these variables (it connects to nothing)."""
    for name in POOL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://root@127.0.0.1:5432/h_settings_only")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "clinic_crm" / "settings.py"))


def test_pool_size_and_timeout_come_from_the_environment(monkeypatch):
    database = _settings_with(monkeypatch, DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="4", DB_POOL_TIMEOUT="2.5")["DATABASES"]["default"]
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 2.5}
    assert database["CONN_MAX_AGE"] == 0  # Django refuses persistent connections beside a pool
    # Server-side binding and preparing stay on with the pool.
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["prepare_threshold"] == 5


def test_the_default_pool_is_two_to_ten_connections_waiting_thirty_seconds(monkeypatch):
    assert _settings_with(monkeypatch)["DATABASES"]["default"]["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 30.0}


def test_sqlite_has_no_pool(monkeypatch):
    for name in POOL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert "pool" not in runpy.run_path(str(ROOT / "clinic_crm" / "settings.py"))["DATABASES"]["default"]["OPTIONS"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_POOL_MAX_SIZE": "ten"}, "DB_POOL_MAX_SIZE must be a whole number, not 'ten'."),
        ({"DB_POOL_MIN_SIZE": "1.5"}, "DB_POOL_MIN_SIZE must be a whole number, not '1.5'."),
        (
            {"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "3"},
            "0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE and DB_POOL_MAX_SIZE >= 1 (got 5 and 3)",
        ),
        ({"DB_POOL_MAX_SIZE": "0", "DB_POOL_MIN_SIZE": "0"}, "DB_POOL_MAX_SIZE >= 1 (got 0 and 0)"),
        ({"DB_POOL_MIN_SIZE": "-1"}, "(got -1 and 10)"),
        ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT must be a positive number of seconds, not '0'."),
        ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT must be a number, not 'soon'."),
        ({"DB_POOL_TIMEOUT": "nan"}, "DB_POOL_TIMEOUT must be a positive number of seconds, not 'nan'."),
        ({"CONN_MAX_AGE": "60"}, "CONN_MAX_AGE is replaced by the connection pool"),
    ],
)
def test_a_pool_setting_that_makes_no_sense_stops_the_start(monkeypatch, env, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        _settings_with(monkeypatch, **env)
    assert message in str(refused.value)


# --- the answer when no connection comes in time -------------------------------------------------


def _pool_timeout(**kwargs):
    """What Django raises when psycopg_pool's getconn() times out: its OperationalError, caused by PoolTimeout."""
    from psycopg_pool import PoolTimeout

    try:
        raise PoolTimeout("couldn't get a connection after 10.00 sec")
    except PoolTimeout as exc:
        raise OperationalError(str(exc)) from exc


@pytest.mark.django_db
def test_an_api_view_that_cannot_get_a_connection_answers_503_in_the_api_format(api, alpha, monkeypatch, caplog):
    """A view that reconnects mid-request (after a failed rollback closed its connection) meets the full pool there."""
    monkeypatch.setattr(selectors, "free_slots", _pool_timeout)
    with caplog.at_level(logging.INFO):
        response = api.get(f"/api/clinics/{alpha.clinic.slug}/slots/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {"code": "busy", "detail": "The server is busy. Please try again in a few seconds."}
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.django_db
def test_a_page_that_cannot_get_a_connection_answers_a_short_503_page_in_russian(alpha, checkup, monkeypatch, caplog):
    monkeypatch.setattr(selectors, "free_slots", _pool_timeout)
    url = reverse("appointments:book-slots", kwargs={"slug": alpha.clinic.slug, "service_id": checkup.pk})
    with caplog.at_level(logging.INFO):
        response = Client(HTTP_ACCEPT_LANGUAGE="ru").get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<html lang="ru">' in page
    assert "Сервер перегружен" in page
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]


# --- prepared statements stay with pooled connections ---------------------------------------------


@postgresql_only
@pytest.mark.django_db
def test_statements_prepared_on_a_pooled_connection_survive_its_return_to_the_pool():
    """psycopg prepares per connection (PG_PREPARE_THRESHOLD runs); the pool hands the same session back."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    settings_dict = {**connection.settings_dict, "OPTIONS": {**connection.settings_dict["OPTIONS"]}}
    settings_dict["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 1, "timeout": 10}  # one connection: the same one comes back
    probe = DatabaseWrapper(settings_dict, alias="pool_probe")
    threshold = settings_dict["OPTIONS"]["prepare_threshold"]
    statement = "SELECT count(*) FROM clinics_clinic WHERE id > %s"
    prepared = "SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT count(*) FROM clinics_clinic%'"
    try:
        with probe.cursor() as cursor:
            for _ in range(threshold + 1):
                cursor.execute(statement, [0])
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
            cursor.execute(prepared)
            assert cursor.fetchall() == [("SELECT count(*) FROM clinics_clinic WHERE id > $1",)]
        probe.close()  # back to the pool
        assert probe.connection is None

        with probe.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] == pid
            cursor.execute(prepared)
            assert cursor.fetchall() == [("SELECT count(*) FROM clinics_clinic WHERE id > $1",)]
            cursor.execute(statement, [0])  # runs the prepared statement: psycopg still knows it on this connection
            cursor.execute(prepared)
            assert len(cursor.fetchall()) == 1
    finally:
        probe.close()
        probe.close_pool()


# --- the real server under bursts ------------------------------------------------------------------


class Daphne:
    def __init__(self, process: subprocess.Popen, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def pg() -> Iterator[Callable[[], object]]:
    """pg(): a psycopg connection of the test's own to the test database (autocommit), closed after the test."""
    import psycopg

    opened = []

    def open_connection():
        opened.append(psycopg.connect(_database_url(), autocommit=True))
        return opened[-1]

    yield open_connection
    for conn in opened:
        conn.close()


def _own_connections(sampler) -> int:
    """What this test process has open on the test database, once its own pool has opened its minimum."""
    if getattr(connection, "pool", None) is not None:
        connection.pool.wait(timeout=30)
    return _count(sampler)


@pytest.fixture
def daphne(tmp_path) -> Iterator[Callable[..., Daphne]]:
    """start(DB_POOL_MAX_SIZE=…): `daphne clinic_crm.asgi:application` on a free port against the test database."""
    started: list[subprocess.Popen] = []

    def start(**pool_env: str) -> Daphne:
        port = _free_port()
        log = tmp_path / f"daphne-{port}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", *POOL_VARIABLES)}
        env.update(DATABASE_URL=_database_url(), LOG_LEVEL="INFO", **pool_env)
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "clinic_crm.asgi:application"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(process)
        server = Daphne(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.url}/api/clinics/", timeout=5).status_code < 500:
                    return server
            except httpx.TransportError:
                pass
            try:
                process.wait(timeout=0.1)  # paces the polling and notices a server that died
            except subprocess.TimeoutExpired:
                pass
            else:
                raise RuntimeError(f"daphne exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not answer within 60 s:\n{log.read_text()}")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _count(conn) -> int:
    return conn.execute(CLIENT_BACKENDS).fetchone()[0]


def _burst(url: str, paths: list[str]) -> list[httpx.Response]:
    """GET every path at once: one thread each, released together."""
    gate = threading.Barrier(len(paths))
    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=len(paths))) as client:

        def get(path: str) -> httpx.Response:
            gate.wait(timeout=60)
            return client.get(path, headers={"Accept-Language": "en"})

        with ThreadPoolExecutor(max_workers=len(paths)) as pool:
            return list(pool.map(get, paths))


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_bursts_of_100_requests_never_take_more_connections_than_the_pool(alpha, checkup, daphne, pg):
    sampler = pg()
    own = _own_connections(sampler)  # this test process: its Django connections and the sampler
    bound = own + 10
    server = daphne(DB_POOL_MIN_SIZE="2", DB_POOL_MAX_SIZE="10", DB_POOL_TIMEOUT="60")
    path = f"/api/clinics/{alpha.clinic.slug}/slots/?service={checkup.pk}&days=7"

    for _round in range(2):  # the old leak grew with every burst
        samples: list[int] = []
        done = threading.Event()

        def sample(samples: list[int], done: threading.Event) -> None:
            while not done.is_set():
                samples.append(_count(sampler))

        watcher = threading.Thread(target=sample, args=(samples, done))
        watcher.start()
        try:
            responses = _burst(server.url, [path] * 100)
        finally:
            done.set()
            watcher.join(timeout=30)

        assert [r.status_code for r in responses] == [200] * 100
        assert all(r.json()["days"] for r in responses)
        assert samples, "the burst ended before a single sample"
        assert max(samples) <= bound, f"{max(samples)} connections, the bound is {bound} (pool 10 + {own} of the test's own)"
        assert max(samples) > own  # the server did use the database
        assert _count(sampler) <= bound  # what is left are the pool's idle connections, no more


class RawSocket:
    """/ws/ opened as the page opens it (Origin, session cookie), frames read off the wire (no client library needed)."""

    def __init__(self, port: int, session_key: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: sessionid={session_key}\r\n\r\n"
        )
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(request.encode())
        self.stream = self.sock.makefile("rb")
        status = self.stream.readline()
        assert b" 101 " in status, status
        while self.stream.readline() not in (b"\r\n", b""):
            pass

    def frame(self) -> tuple[int, bytes]:
        """The next frame the server sends: (opcode, payload)."""
        head = self.stream.read(2)
        assert len(head) == 2, "the server dropped the socket without a close frame"
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self.stream.read(2), "big")
        elif length == 127:
            length = int.from_bytes(self.stream.read(8), "big")
        return opcode, self.stream.read(length)

    def close_code(self) -> int:
        """Read until the server's close frame and return its code."""
        while True:
            opcode, payload = self.frame()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def _socket_close_code(port: int, session_key: str) -> int:
    ws = RawSocket(port, session_key)
    try:
        return ws.close_code()
    finally:
        ws.close()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_open_socket_holds_no_connection_between_its_database_calls(alpha, daphne, pg):
    """With a pool of one, a signed-in socket that said hello leaves the connection to the requests around it."""
    web = Client()
    web.force_login(alpha.operator)
    sampler = pg()
    own = _own_connections(sampler)
    server = daphne(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="1", DB_POOL_TIMEOUT="5")
    ws = RawSocket(server.port, web.cookies["sessionid"].value)
    try:
        opcode, payload = ws.frame()
        assert opcode == 0x1
        assert json.loads(payload)["type"] == "hello"  # connect read the user, roles and groups and stored the socket
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert [client.get(f"/api/clinics/{alpha.clinic.slug}/slots/").status_code for _ in range(3)] == [200] * 3
        assert _count(sampler) <= own + 1
    finally:
        ws.close()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_requests_past_a_full_pool_wait_then_get_503_with_retry_after_and_the_socket_4503(alpha, checkup, daphne, pg):
    """Two requests hold the pool's two connections (stuck behind a table lock the test holds); the rest wait past
    DB_POOL_TIMEOUT and are told to come back, the socket too; once the lock goes, everything is served again."""
    web = Client()
    web.force_login(alpha.operator)
    session_key = web.cookies["sessionid"].value
    sampler, locker = pg(), pg()
    own = _own_connections(sampler)
    server = daphne(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="2", DB_POOL_TIMEOUT="0.5")
    api_path = f"/api/clinics/{alpha.clinic.slug}/slots/?service={checkup.pk}&days=7"
    page_path = reverse("patients:login")

    locker.execute("BEGIN")
    locker.execute("LOCK TABLE clinics_clinic IN ACCESS EXCLUSIVE MODE")
    holders_pool = ThreadPoolExecutor(max_workers=2)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        holders = [holders_pool.submit(client.get, api_path) for _ in range(2)]
        deadline = time.monotonic() + 60
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        while sampler.execute(waiting).fetchone()[0] < 2:
            assert time.monotonic() < deadline, "the two requests never reached the lock"
            wait_for_futures(holders, timeout=0.05)  # paces the polling; neither can finish while the lock is held

        paths = [api_path] * 20 + [page_path] * 8
        with ThreadPoolExecutor(max_workers=1) as socket_pool:
            socket_close = socket_pool.submit(_socket_close_code, server.port, session_key)
            turned_away = _burst(server.url, paths)
            close_code = socket_close.result(timeout=60)

        assert all(not h.done() for h in holders)
        locker.execute("ROLLBACK")
        served = [h.result(timeout=60) for h in holders]
        holders_pool.shutdown()

        assert [r.status_code for r in served] == [200, 200]
        assert [r.status_code for r in turned_away] == [503] * len(paths)
        for path, response in zip(paths, turned_away, strict=True):
            assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            if path == api_path:
                assert response.headers["Content-Type"] == "application/json"
                assert response.json() == {"code": "busy", "detail": "The server is busy. Please try again in a few seconds."}
            else:
                assert response.headers["Content-Type"].startswith("text/html")
                assert "The server is busy" in response.text
        assert close_code == SOCKET_CLOSE_BUSY

        # Nothing was lost on the way: the two connections serve request after request again.
        assert [client.get(api_path).status_code for _ in range(6)] == [200] * 6
        assert _count(sampler) <= own + 2

    log = server.log.read_text()
    assert f"answered {api_path.split('?')[0]} as busy" in log
    assert "answered /ws/ as busy" in log
    assert "Traceback" not in log
    assert " ERROR " not in log


# --- Celery's processes: a connection per task, no pool --------------------------------------------

CELERY_PROBE = """
import json, sys, threading, time
import django
django.setup()
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper
from clinic_crm.celery import app

report = {"pool_setting_before": connections["default"].settings_dict["OPTIONS"].get("pool")}
if sys.argv[1] == "worker":
    app.Worker(pool="solo", queues=["pool-probe"], loglevel="WARNING", quiet=True)  # what `celery worker` runs first
else:
    beat = app.Beat(scheduler="django_celery_beat.schedulers:DatabaseScheduler", loglevel="WARNING", quiet=True)
    service = beat.Service(app=app, max_interval=1, scheduler_cls=beat.scheduler_cls, schedule_filename=beat.schedule)
    runner = threading.Thread(target=service.start, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while service._last_tick is None and runner.is_alive() and time.monotonic() < deadline:
        runner.join(timeout=0.05)
    report["ticked"] = service._last_tick is not None
    service.stop()
    runner.join(timeout=30)
report["pool_setting_after"] = connections["default"].settings_dict["OPTIONS"].get("pool")
report["open_pools"] = sorted(DatabaseWrapper._connection_pools)
print(json.dumps(report))
"""


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("process", ["worker", "beat"])
def test_celery_worker_and_beat_run_without_the_pool(process):
    """A prefork child runs one task at a time and Celery closes its connection after each: no pool to keep."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", *POOL_VARIABLES)}
    env.update(DATABASE_URL=_database_url(), DJANGO_SETTINGS_MODULE="clinic_crm.settings", LOG_LEVEL="WARNING")
    result = subprocess.run([sys.executable, "-c", CELERY_PROBE, process], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["pool_setting_before"] == {"min_size": 2, "max_size": 10, "timeout": 30.0}
    assert report["pool_setting_after"] is None
    assert report["open_pools"] == []
    if process == "beat":
        assert report["ticked"]  # the schedule was read and run through plain connections
