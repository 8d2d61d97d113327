"""Message send throughput: `messaging.services.send_message` against a raw INSERT + COMMIT + PUBLISH.

What is measured
    send_message: the real service, in this process, against PostgreSQL (DATABASE_URL) and the
    channels_redis layer + Redis cache (REDIS_URL): validation, consent check, throttle counter,
    idempotency lookup (every message carries a client_msg_id, as the socket and portal send),
    row lock, seq, counters, the offline outbox and, after commit, the broadcast to the thread's
    staff and patient groups. Messages alternate between staff replies (rotating among the
    clinic's operators) and patient messages, over several threads.

What it is compared with (same run, same number of messages, interleaved in blocks)
    raw: psycopg 3 INSERT of an equivalent messaging_message row + COMMIT + one Redis PUBLISH
    of an equivalent JSON payload. That is the least any message send has to do.

Target: msgs/s of send_message / msgs/s of raw >= 0.5.

The per-user throttle (SEND_LIMIT_PER_MINUTE) would stop a benchmark after 30 messages per
sender; the script raises messaging.services.throttle.SEND_LIMIT_PER_MINUTE in its own process only
(the throttle's Redis counter still runs and is measured). Product code is not changed.

    python bench/send_message.py [--messages 2000] [--block 100] [--threads 20] [--staff 50] [--profile]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime

from common import ensure_clinic, ensure_patient_threads, machine, percentile, psycopg_url, setup_django, summary_ms, verdict

TARGET_RATIO = 0.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per side (default 2000)")
    parser.add_argument("--block", type=int, default=100, help="messages per block; blocks of both sides alternate (default 100)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured messages per side first (default 100)")
    parser.add_argument("--threads", type=int, default=20, help="threads written to, round robin (default 20)")
    parser.add_argument("--staff", type=int, default=50, help="operators the staff replies rotate among (default 50)")
    parser.add_argument("--author", choices=["mix", "staff", "patient"], default="mix", help="who writes (default: alternate)")
    parser.add_argument("--breakdown-messages", type=int, default=500, help="then time the phases of this many sends (0: skip)")
    parser.add_argument("--profile", action="store_true", help="then profile send_message with pyinstrument (bench/requirements.txt)")
    parser.add_argument("--profile-messages", type=int, default=500)
    return parser.parse_args()


class DjangoSide:
    """Sends through messaging.services.send_message."""

    name = "send_message"

    def __init__(self, threads: list, staff: list, author: str) -> None:
        from messaging import services

        self.services = services
        self.threads, self.staff, self.author = threads, staff, author
        self.n = 0

    def sender_for(self, i: int, thread):
        staff_turn = self.author == "staff" or (self.author == "mix" and i % 2 == 0)
        return self.staff[(i // 2) % len(self.staff)] if staff_turn else thread.patient.user

    def send(self) -> None:
        i = self.n
        self.n += 1
        thread = self.threads[i % len(self.threads)]
        self.services.send_message(
            thread=thread, actor=self.sender_for(i, thread), text=f"bench message {i}: when can I come in?", client_msg_id=uuid.uuid4().hex
        )


class RawSide:
    """The floor: INSERT an equivalent row, COMMIT, PUBLISH an equivalent payload."""

    name = "raw"

    INSERT = (
        "INSERT INTO messaging_message (thread_id, seq, author, sender_id, kind, text, data, client_msg_id, created_at) "
        "VALUES (%s, %s, %s, %s, 'text', %s, '{}', %s, %s)"
    )

    def __init__(self, thread, staff_id: int, redis_url: str) -> None:
        import psycopg
        import redis

        self.conn = psycopg.connect(psycopg_url())
        self.redis = redis.Redis.from_url(redis_url)
        self.thread = thread
        self.staff_id = staff_id
        (last,) = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messaging_message WHERE thread_id = %s", [thread.pk]).fetchone()
        self.conn.commit()
        self.seq = last

    def send(self) -> None:
        self.seq += 1
        now = datetime.now(UTC)
        text = f"bench message {self.seq}: when can I come in?"
        client_msg_id = uuid.uuid4().hex
        author, sender = ("staff", self.staff_id) if self.seq % 2 else ("patient", self.thread.patient.user_id)
        self.conn.execute(self.INSERT, [self.thread.pk, self.seq, author, sender, text, client_msg_id, now])
        self.conn.commit()
        payload = {
            "type": "message.new",
            "thread": self.thread.pk,
            "seq": self.seq,
            "author": author,
            "author_name": "Op",
            "kind": "text",
            "text": text,
            "html": text,
            "attachments": [],
            "client_msg_id": client_msg_id,
            "created_at": now.isoformat(),
        }
        self.redis.publish(f"bench.thread.{self.thread.pk}", json.dumps(payload))

    def close(self) -> None:
        self.conn.close()
        self.redis.close()


def run_block(side, count: int, durations: list[float]) -> float:
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        side.send()
        durations.append(time.perf_counter() - t0)
    return time.perf_counter() - start


def queries_per_send(side: DjangoSide) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        side.send()
    return len(captured.captured_queries)


def main() -> None:
    args = parse_args()
    setup_django()
    from django.conf import settings

    from messaging.models import Message
    from messaging.services import throttle

    print(f"machine: {machine()}")
    clinic, staff, document = ensure_clinic("bench-send", name="Bench Send", staff=args.staff)
    threads = ensure_patient_threads(clinic, document, count=args.threads + 1, prefix="bench-send-patient", phone_base=9_100_000_000)
    raw_thread, threads = threads[0], threads[1:]
    # Each send rewrites its thread's row: earlier runs leave thousands of dead versions of these few rows behind.
    # Production's autovacuum clears them; where it is off (as on the bench machines) the statement slows run after run.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
        cursor.execute("VACUUM ANALYZE messaging_thread, messaging_message, notifications_notification")
    print(f"VACUUM ANALYZE of the thread, message and outbox tables first (autovacuum is {autovacuum} on this server)")

    limit = throttle.SEND_LIMIT_PER_MINUTE
    throttle.SEND_LIMIT_PER_MINUTE = 10**9
    print(
        f"note: messaging.services.throttle.SEND_LIMIT_PER_MINUTE raised from {limit} to {throttle.SEND_LIMIT_PER_MINUTE} "
        "in this process only (the throttle counter still runs)"
    )
    print(f"channel layer: {settings.CHANNEL_LAYERS['default']['BACKEND']}  cache: {settings.CACHES['default']['BACKEND']}")
    print(
        f"{args.messages} messages per side in blocks of {args.block} (after {args.warmup} warm-up each), "
        f"{len(threads)} threads, {len(staff)} operators, author={args.author}"
    )

    django_side = DjangoSide(threads, staff, args.author)
    raw_side = RawSide(raw_thread, staff[0].pk, settings.REDIS_URL)
    sides = {"send_message": django_side, "raw": raw_side}
    elapsed = {name: 0.0 for name in sides}
    durations: dict[str, list[float]] = {name: [] for name in sides}

    for side in sides.values():
        run_block(side, args.warmup, [])
    print(f"queries per send_message: {queries_per_send(django_side)} (one staff reply)")

    done, order = 0, ["send_message", "raw"]
    while done < args.messages:
        count = min(args.block, args.messages - done)
        for name in order:
            elapsed[name] += run_block(sides[name], count, durations[name])
        order.reverse()  # ABBA: neither side always runs first
        done += count
    raw_side.close()

    rate = {name: args.messages / elapsed[name] for name in sides}
    print()
    for name in sides:
        print(f"{name:>12}: {rate[name]:8.1f} msgs/s   per message {summary_ms(durations[name])}")
    ratio = rate["send_message"] / rate["raw"]
    print(f"{'ratio':>12}: send_message/raw = {ratio:.3f}  (target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)})")
    print(
        f"{'':>12}  p50 per message: send_message {percentile(durations['send_message'], 50) * 1000:.2f} ms vs raw "
        f"{percentile(durations['raw'], 50) * 1000:.2f} ms"
    )
    print(f"machine after the run: {machine()}")
    stored = Message.objects.filter(thread__in=threads).count()
    print(f"(messages now stored in the bench threads: {stored})")

    if args.breakdown_messages:
        breakdown(django_side, args.breakdown_messages)
    if args.profile:
        profile(django_side, args.profile_messages)


PHASES = [
    # (label, name, [(module, attribute) where send_message looks it up], parent name): timed in the breakdown pass only.
    ("side_of: who is writing (cached roles)", "side_of", [("sending", "side_of")], None),
    ("store_postgresql: counters, statement, outbox", "store_postgresql", [("sending", "store_postgresql")], None),
    ("  of which the statement", "_run_statement", [("store", "_run_statement")], "store_postgresql"),
    (
        "  of which cache_increment (throttle, inbox version)",
        "cache_increment",
        [("throttle", "cache_increment"), ("broadcast", "cache_increment")],
        "store_postgresql",
    ),
    ("announce_message after commit: payloads + broadcast", "announce_message", [("sending", "announce_message")], None),
    ("  of which send_events (channels_redis)", "send_events", [("realtime", "send_events")], "announce_message"),
]


def breakdown(side: DjangoSide, count: int) -> None:
    """Where one send_message spends its time: the service's own steps wrapped with timers."""
    from messaging import realtime
    from messaging.services import broadcast, sending, store, throttle

    modules = {"sending": sending, "store": store, "throttle": throttle, "broadcast": broadcast, "realtime": realtime}
    spent: dict[str, float] = {}
    originals = []

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    for _label, name, places, _parent in PHASES:
        for module, attribute in places:
            original = getattr(modules[module], attribute)
            originals.append((modules[module], attribute, original))
            setattr(modules[module], attribute, timed(name, original))
    try:
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(count):
            side.send()
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for module, attribute, original in originals:
            setattr(module, attribute, original)

    per = 1000 / count
    print(f"\n--- where a send_message goes ({count} sends, ms per message; CPU of this process {cpu * per:.2f} ms) ---")
    print(f"{'total':<48} {total * per:7.2f}")
    top = 0.0
    for label, name, _places, parent in PHASES:
        print(f"{label:<52} {spent.get(name, 0.0) * per:7.2f}")
        if parent is None:
            top += spent.get(name, 0.0)
    print(f"{'rest: validation, dispatch':<48} {(total - top) * per:7.2f}")


def profile(side: DjangoSide, count: int) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("pip install -r bench/requirements.txt for --profile") from None
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(count):
        side.send()
    profiler.stop()
    print(f"\n--- pyinstrument: {count} send_message calls ---")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
