"""WebSocket delivery under load: send_message → channels_redis → daphne → 1,000 patient sockets.

What is measured
    The real server (daphne clinic_crm.asgi:application, one or more processes) with the bench
    database and Redis. N patients each have a consented thread and a signed-in session
    (created as a login would: SessionStore with the auth keys); each opens /ws/ with the
    session cookie and an Origin header, says `resume` as the shared client does, and pings
    every `heartbeat` seconds. Sender processes then call messaging.services.send_message as
    staff (rotating among the clinic's operators) into random threads at a fixed total rate,
    stamping each text with an id and the send time (CLOCK_MONOTONIC, system-wide on Linux).
    Each socket records when its `message.new` arrives.

    Printed: send→receive latency p50/p95/p99, messages lost (sent, not received within
    --grace seconds after the end), duplicated (same (thread, seq) twice), achieved rate,
    and the CPU each part used.

What it is compared with (same run, same rate, same sender processes)
    A raw Redis PUBLISH (sender process) → SUBSCRIBE (this process) round trip.

Targets: p99 < 25 ms, 0 lost, 0 duplicated at 200 msg/s into 1,000 sockets.

The per-user throttle is raised in the sender processes only (SEND_LIMIT_PER_MINUTE, module
attribute); product code is not changed.

    python bench/ws_load.py [--sockets 1000] [--rate 200] [--seconds 60] [--workers 1] [--senders 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import queue as queue_module
import random
import resource
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from common import ROOT, bench_env, ensure_clinic, ensure_patient_threads, machine, percentile, setup_django, summary_ms, verdict

TARGET_P99_MS = 25.0


def clock() -> float:
    """CLOCK_MONOTONIC: the same clock in every process of this machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000, help="patient sockets (default 1000)")
    parser.add_argument("--rate", type=float, default=200, help="messages per second, all senders together (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="duration of the send phase (default 60)")
    parser.add_argument("--grace", type=float, default=5, help="seconds to wait for late messages after the end (default 5)")
    parser.add_argument("--workers", type=int, default=1, help="daphne processes, on consecutive ports; sockets spread evenly (default 1)")
    parser.add_argument("--senders", type=int, default=3, help="sender processes calling send_message (default 3)")
    parser.add_argument("--staff", type=int, default=50, help="operators the messages rotate among (default 50)")
    parser.add_argument("--staff-sockets", type=int, default=0, help="also connect this many operators (they hear every message)")
    parser.add_argument("--baseline-seconds", type=float, default=15, help="duration of the raw Redis phase (default 15)")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="sockets opening at once (default 50)")
    return parser.parse_args()


# --- the world ---------------------------------------------------------------------------------


def seed(args: argparse.Namespace) -> dict:
    """Patients with consented threads and fresh sessions; operators. Returns what the other processes need."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from messaging.models import SocketConnection

    started = time.perf_counter()
    clinic, staff, document = ensure_clinic("bench-ws", name="Bench WS", staff=args.staff)
    threads = ensure_patient_threads(clinic, document, count=args.sockets, prefix="bench-ws-patient", phone_base=9_200_000_000)

    def session_for(user) -> Session:
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        return Session(session_key=get_random_string(32), session_data=SessionStore().encode(data), expire_date=expires)

    now = timezone.now()
    expires = now + timedelta(hours=2)
    Session.objects.filter(expire_date__lt=now).delete()
    patient_sessions = [session_for(t.patient.user) for t in threads]
    staff_sessions = [session_for(user) for user in staff[: args.staff_sockets]]
    Session.objects.bulk_create(patient_sessions + staff_sessions, batch_size=2000)
    # Rows of sockets of an earlier, interrupted run would make patients look online.
    SocketConnection.objects.filter(user__in=[t.patient.user for t in threads] + staff).delete()
    print(f"seeded {len(threads)} patients with consented threads and sessions in {time.perf_counter() - started:.1f} s")
    return {
        "thread_ids": [t.pk for t in threads],
        "staff_ids": [u.pk for u in staff],
        "patient_cookies": [s.session_key for s in patient_sessions],
        "staff_cookies": [s.session_key for s in staff_sessions],
        "cookie_name": settings.SESSION_COOKIE_NAME,
    }


# --- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daphnes(count: int, log_dir: Path) -> list[tuple[subprocess.Popen, int]]:
    daphne = Path(sys.executable).parent / "daphne"
    env = {**os.environ, **bench_env()}
    servers = []
    for i in range(count):
        port = free_port()
        log = open(log_dir / f"daphne-{i}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "clinic_crm.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append((proc, port))
    deadline = time.monotonic() + 60
    for proc, port in servers:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"daphne on port {port} exited: see {log_dir}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"daphne on port {port} did not start: see {log_dir}") from None
                time.sleep(0.2)
    return servers


# --- senders (separate processes) -------------------------------------------------------------


def sender_main(index: int, count: int, world: dict, commands: mp.Queue, results: mp.Queue) -> None:
    """Runs phases on command: ("redis"|"ws", start_at, seconds, rate). Sends its share of the rate."""
    sys.path.insert(0, str(Path(__file__).parent))
    setup_django(migrate=False)
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from messaging import services
    from messaging.models import Thread

    services.throttle.SEND_LIMIT_PER_MINUTE = 10**9  # this process only: 50 operators × 30/min is far below the rate
    threads = list(Thread.objects.filter(pk__in=world["thread_ids"]).select_related("patient", "clinic"))
    staff = list(get_user_model().objects.filter(pk__in=world["staff_ids"]))
    publisher = redis.Redis.from_url(settings.REDIS_URL)
    rng = random.Random(index)
    run_id = f"{os.getpid()}"
    results.put(("ready", index))

    while True:
        command = commands.get()
        if command is None:
            return
        phase, start_at, seconds, rate = command
        records, errors, lags = [], 0, []
        k = 0
        while True:
            due = start_at + (index + k * count) / rate
            if due >= start_at + seconds or clock() >= start_at + seconds:
                break  # a sender that cannot keep up stops at the end all the same: the achieved rate tells
            wait = due - clock()
            if wait > 0:
                time.sleep(wait)
            lags.append(max(0.0, clock() - due))
            msg_id = f"{index}-{k}"
            t0 = clock()
            if phase == "redis":
                publisher.publish("bench-ws-baseline", json.dumps({"id": msg_id, "t": t0, "text": f"bench {msg_id} {t0:.6f}"}))
                records.append((msg_id, 0, 0, t0, clock()))
            else:
                thread = rng.choice(threads)
                try:
                    message, _created = services.send_message(
                        thread=thread,
                        actor=staff[k % len(staff)],
                        text=f"bench {msg_id} {t0:.6f}",
                        client_msg_id=f"ws-{run_id}-{msg_id}",
                    )
                    records.append((msg_id, thread.pk, message.seq, t0, clock()))
                except Exception as exc:  # counted, and the first few shown
                    errors += 1
                    if errors <= 3:
                        print(f"sender {index}: {exc!r}", file=sys.stderr)
            k += 1
        results.put(("done", index, records, errors, lags))


class Senders:
    def __init__(self, count: int, world: dict) -> None:
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(count)]
        self.procs = [
            ctx.Process(target=sender_main, args=(i, count, world, self.commands[i], self.results), daemon=True) for i in range(count)
        ]
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            self.results.get(timeout=120)

    def run(self, phase: str, start_at: float, seconds: float, rate: float) -> tuple[list, int, list]:
        for queue in self.commands:
            queue.put((phase, start_at, seconds, rate))
        records, errors, lags = [], 0, []
        pending = len(self.procs)
        while pending:
            try:
                _done, _index, r, e, lag = self.results.get(timeout=1)
            except queue_module.Empty:
                if not all(p.is_alive() for p in self.procs):
                    raise RuntimeError("a sender process died") from None
                continue
            records += r
            errors += e
            lags += lag
            pending -= 1
        return records, errors, lags

    def stop(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


# --- CPU accounting --------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- the measurements --------------------------------------------------------------------------------


async def redis_baseline(senders: Senders, rate: float, seconds: float, redis_url: str) -> tuple[list[float], int, int]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe("bench-ws-baseline")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    latencies: list[float] = []
    seen: Counter = Counter()
    stop = asyncio.Event()

    async def listen() -> None:
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is None:
                continue
            now = clock()
            body = json.loads(message["data"])
            latencies.append(now - body["t"])
            seen[body["id"]] += 1

    listener = asyncio.create_task(listen())
    records, _errors, _lags = await asyncio.to_thread(senders.run, "redis", clock() + 1, seconds, rate)
    await asyncio.sleep(1)
    stop.set()
    await listener
    await pubsub.aclose()
    await client.aclose()
    lost = len({r[0] for r in records} - set(seen))
    return latencies, lost, len(records)


class Sockets:
    """The patients' (and optionally operators') sockets and what they received."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.received: Counter = Counter()  # (thread, seq) → times received by its patient
        self.arrivals: dict[str, float] = {}  # message id → first arrival
        self.staff_events = 0
        self.errors: Counter = Counter()
        self.connections: list = []
        self.tasks: list[asyncio.Task] = []

    async def open(self, urls: list[str], cookies: list[str], cookie_name: str, concurrency: int, *, staff: bool = False) -> None:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, cookie: str) -> None:
            url = urls[i % len(urls)]
            async with gate:
                ws = await connect(
                    url,
                    origin="http://127.0.0.1",
                    additional_headers={"Cookie": f"{cookie_name}={cookie}"},
                    compression=None,
                    proxy=None,
                    ping_interval=None,
                    max_queue=None,
                    open_timeout=60,
                )
                hello = json.loads(await ws.recv())
                if hello.get("type") != "hello":
                    raise RuntimeError(f"expected hello, got {hello}")
                await ws.send(json.dumps({"type": "resume", "cursors": {}}))
            self.connections.append(ws)
            self.tasks.append(asyncio.create_task(self.listen(ws, staff=staff, heartbeat=hello.get("heartbeat", 25))))

        outcomes = await asyncio.gather(*(one(i, c) for i, c in enumerate(cookies)), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise SystemExit(f"{len(failed)} sockets failed to open, e.g. {failed[0]!r}")

    async def listen(self, ws, *, staff: bool, heartbeat: float) -> None:
        import websockets

        next_ping = clock() + random.uniform(0, heartbeat)
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=max(0.05, next_ping - clock()))
                except TimeoutError:
                    await ws.send('{"type": "ping"}')
                    next_ping = clock() + heartbeat
                    continue
                now = clock()
                event = json.loads(raw)
                kind = event.get("type")
                if kind != "message.new":
                    if kind == "error":
                        self.errors[event.get("code")] += 1
                    continue
                if staff:
                    self.staff_events += 1
                    continue
                _bench, msg_id, sent_at = event["text"].split(" ")
                self.latencies.append(now - float(sent_at))
                self.received[(event["thread"], event["seq"])] += 1
                self.arrivals.setdefault(msg_id, now)
        except websockets.ConnectionClosed:
            self.errors["closed"] += 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.connections), return_exceptions=True)


async def run(args: argparse.Namespace, world: dict, servers: list, senders: Senders) -> None:
    from django.conf import settings

    print(f"\n1) baseline: raw Redis PUBLISH → SUBSCRIBE at {args.rate:g} msg/s for {args.baseline_seconds:g} s")
    base, base_lost, base_sent = await redis_baseline(senders, args.rate, args.baseline_seconds, settings.REDIS_URL)
    print(f"   {len(base)}/{base_sent} received, lost {base_lost}   {summary_ms(base)}")

    urls = [f"ws://127.0.0.1:{port}/ws/" for _proc, port in servers]
    sockets = Sockets()
    started = time.perf_counter()
    await sockets.open(urls, world["patient_cookies"], world["cookie_name"], args.connect_concurrency)
    if world["staff_cookies"]:
        await sockets.open(urls, world["staff_cookies"], world["cookie_name"], args.connect_concurrency, staff=True)
    print(
        f"\n2) opened {len(sockets.connections)} sockets ({args.sockets} patients, {len(world['staff_cookies'])} operators) "
        f"on {len(servers)} daphne process(es) in {time.perf_counter() - started:.1f} s"
    )

    print(f"   send_message at {args.rate:g} msg/s for {args.seconds:g} s from {args.senders} sender processes …")
    daphne_pids, sender_pids = [p.pid for p, _port in servers], senders.pids
    others = {"postgres": pids_named("postgres"), "redis": pids_named("redis-server")}
    cpu_before = {
        "daphne": cpu_seconds(daphne_pids),
        "senders": cpu_seconds(sender_pids),
        "clients (this process)": time.process_time(),
        **{k: cpu_seconds(v) for k, v in others.items()},
    }
    busy_before = machine_busy()
    t_start = clock()
    records, errors, lags = await asyncio.to_thread(senders.run, "ws", clock() + 1, args.seconds, args.rate)
    t_sent = clock()
    wall = t_sent - t_start - 1
    cpu_after = {
        "daphne": cpu_seconds(daphne_pids),
        "senders": cpu_seconds(sender_pids),
        "clients (this process)": time.process_time(),
        **{k: cpu_seconds(v) for k, v in others.items()},
    }
    busy_after = machine_busy()
    await asyncio.sleep(args.grace)
    await sockets.close()

    sent_ids = {r[0] for r in records}
    lost = len(sent_ids - set(sockets.arrivals))
    after_return = [sockets.arrivals[r[0]] - r[4] for r in records if r[0] in sockets.arrivals]
    duplicated = sum(n - 1 for n in sockets.received.values() if n > 1)
    first, last = min(r[3] for r in records), max(r[3] for r in records)
    achieved = (len(records) - 1) / (last - first) if len(records) > 1 else 0.0
    service = [r[4] - r[3] for r in records]
    ws = sockets.latencies
    p99 = percentile(ws, 99) * 1000

    print(f"\n   sent {len(records)} (errors {errors}); achieved {achieved:.1f} msg/s of {args.rate:g} wanted")
    print(f"   sender lag behind schedule: p50 {percentile(lags, 50) * 1000:.1f} ms, p99 {percentile(lags, 99) * 1000:.1f} ms")
    print(f"   send_message call (DB + broadcast): {summary_ms(service)}")
    print(f"   send → receive:                     {summary_ms(ws)}")
    print(f"   send_message returned → received:   {summary_ms(after_return)}  (< 0: before it returned)")
    print(f"   received {len(ws)}, lost {lost}, duplicated {duplicated}; socket errors {dict(sockets.errors) or 0}")
    if world["staff_cookies"]:
        print(f"   operator sockets received {sockets.staff_events} message.new events")

    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]) * 100
    print(f"\n   CPU during the send phase ({wall:.0f} s, {os.cpu_count()} cores, machine {busy:.0f}% busy), % of one core:")
    for name in cpu_before:
        print(f"     {name:<24} {(cpu_after[name] - cpu_before[name]) / wall * 100:6.1f}%")

    print(f"   machine after the send phase: {machine()}")
    base_p50, base_p99 = percentile(base, 50) * 1000, percentile(base, 99) * 1000
    print("\nsummary")
    print(f"   raw Redis pub/sub      p50 {base_p50:7.2f} ms  p99 {base_p99:7.2f} ms")
    print(f"   send_message → socket  p50 {percentile(ws, 50) * 1000:7.2f} ms  p99 {p99:7.2f} ms")
    print(f"   ratio p50 {percentile(ws, 50) * 1000 / base_p50:.1f}×, p99 {p99 / base_p99:.1f}× the raw round trip")
    print(
        f"   target p99 < {TARGET_P99_MS:g} ms: {verdict(p99 < TARGET_P99_MS)};  0 lost: {verdict(lost == 0)};  0 duplicated: {verdict(duplicated == 0)}"
    )
    print(f"   rate {achieved:.1f}/{args.rate:g} msg/s: {verdict(achieved >= args.rate * 0.98)}")


def main() -> None:
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * (args.sockets + args.staff_sockets) + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # daphne inherits it

    setup_django()
    print(f"machine: {machine()}")
    world = seed(args)
    log_dir = Path(os.environ.get("BENCH_LOG_DIR", "/tmp/bench-ws"))
    log_dir.mkdir(parents=True, exist_ok=True)
    servers = start_daphnes(args.workers, log_dir)
    senders = Senders(args.senders, world)
    print(f"daphne ×{len(servers)} on ports {[port for _p, port in servers]} (logs in {log_dir}), {args.senders} sender processes")
    try:
        asyncio.run(run(args, world, servers, senders))
    finally:
        senders.stop()
        for proc, _port in servers:
            proc.terminate()
        for proc, _port in servers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
