"""bin/serve (what `make run` ends in) as a user runs it: it serves, one stop ends every process it
started, and a second one beside it never starts a second beat.

Each bin/serve runs in a session of its own, on a free port and its own SQLite file (migrated
once for the module), with tasks eager: daphne and celery beat, the embedded default.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STOP_BOUND = 10  # seconds: one SIGTERM or Ctrl-C ends everything within this


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc, or None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (command) ", which may hold spaces
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has exited; only its parent's wait is missing


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A migrated SQLite file; each test serves a copy of it."""
    path = tmp_path_factory.mktemp("serve") / "db.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"], cwd=ROOT, env=_env(path), check=True, timeout=300
    )
    return path


def _env(sqlite_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    return {**env, "SQLITE_PATH": str(sqlite_path), "CELERY_TASK_ALWAYS_EAGER": "true", **extra}


@dataclass
class Served:
    process: subprocess.Popen
    port: int
    database: Path
    started: set[int]  # every process bin/serve started, seen while it served

    def beats(self) -> list[int]:
        return [pid for pid in self.started if _alive(pid) and "clinic_crm beat" in _command(pid)]


def _serve(sqlite_path: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            ["bin/serve"], cwd=ROOT, env=_env(sqlite_path, PORT=str(port)), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.fixture
def served(migrated, tmp_path) -> Iterator[Served]:
    """bin/serve answering /health/ with its beat running."""
    database = tmp_path / "db.sqlite3"
    shutil.copy(migrated, database)
    port = _free_port()
    process = _serve(database, port, tmp_path / "serve.log")
    served = Served(process, port, database, set())

    def up() -> bool:
        served.started |= _descendants(process.pid)
        return process.poll() is None and _healthy(port) and bool(served.beats())

    try:
        assert _wait_for(up, 90), (tmp_path / "serve.log").read_text()
        yield served
    finally:
        for pid in {process.pid, *served.started, *_descendants(process.pid)}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_one_stop_ends_every_process_serve_started_within_ten_seconds(served, stop):
    commands = " | ".join(_command(pid) for pid in served.started)
    assert "daphne" in commands and "clinic_crm beat" in commands

    os.killpg(served.process.pid, stop)  # as `kill -TERM -<pgid>` or Ctrl-C reach the group

    everything = {served.process.pid, *served.started}
    assert _wait_for(lambda: not any(_alive(pid) for pid in everything), STOP_BOUND), [_command(p) for p in everything if _alive(p)]
    assert served.process.wait(1) in (130, 143)
    assert not _healthy(served.port)
    lock = f"{served.database}.serve.lock"
    assert subprocess.run(["flock", "--nonblock", lock, "true"]).returncode == 0  # the next bin/serve may start


def test_a_second_serve_on_the_same_database_refuses_and_never_starts_a_second_beat(served, tmp_path):
    second = _serve(served.database, _free_port(), tmp_path / "second.log")
    assert second.wait(30) == 75
    refusal = (tmp_path / "second.log").read_text()
    assert f"already running for this database (pid {served.process.pid}" in refusal and "second celery beat" in refusal

    beats = [pid for pid in Path("/proc").iterdir() if pid.name.isdigit() and "clinic_crm beat" in _command(int(pid.name))]
    ours = [pid for pid in beats if f"\0SQLITE_PATH={served.database}\0".encode() in b"\0" + _environ(int(pid.name))]
    assert len(ours) == 1 and _healthy(served.port)  # the first one serves on, alone


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return b""
