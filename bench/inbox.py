"""Inbox and thread page at scale: 100k threads / 1M messages in one clinic.

What is measured (p50/p95 over --requests calls each, the scenarios interleaved round by round)
    * messaging.selectors.inbox_threads, first page (30), as an operator of the clinic:
      no filter, mine, status=open, one tag;
    * GET /api/threads/ (the staff thread list, 30 a page) and, when it exists, GET /admin/inbox/
      (the operator inbox page: list, filter counts, sidebar badge);
    * the thread page: selectors.thread_messages (the last 50 of a thread with --big-thread
      messages), GET /api/threads/<id>/messages/ and, when it exists, GET /admin/inbox/<id>/.
    Requests go through django.test.Client with force_login: the whole middleware stack,
    session, auth, tenancy, serialisation or template rendering. DEBUG is off as in production
    (static URLs are unhashed so that no collectstatic is needed).

What it is compared with (same run, interleaved)
    raw: psycopg SELECT * of the same 30 thread rows by the inbox index
    (WHERE clinic_id = … ORDER BY last_activity_at DESC LIMIT 30).

Target: p95 < 30 ms for each scenario.

The data are generated once with COPY (a few minutes at most) and reused by later runs;
--rebuild deletes and regenerates them. --explain prints EXPLAIN ANALYZE of every query the
scenarios run.

    python bench/inbox.py [--threads 100000] [--messages 1000000] [--requests 200] [--rebuild] [--explain]
"""

from __future__ import annotations

import argparse
import random
import time
import warnings
from datetime import UTC, datetime, timedelta

from common import ensure_clinic, machine, percentile, psycopg_url, setup_django, verdict

TARGET_P95_MS = 30.0
CLINIC_SLUG = "bench-inbox"
PATIENT_PREFIX = "Inbox Patient"
OPERATORS = 20
TAGS = ["vip", "implants", "orthodontics", "debt", "kids", "whitening", "insurance", "complaint", "review", "lead"]
# Share of threads carrying each tag (the filter benchmark uses "implants").
TAG_SHARE = {"vip": 0.01, "implants": 0.05}
DEFAULT_TAG_SHARE = 0.03
STATUSES = [("open", 30), ("pending", 10), ("resolved", 55), ("snoozed", 5)]
CHANNELS = [("web", 60), ("telegram", 15), ("whatsapp", 15), ("vk", 5), ("email", 3), ("phone", 2)]
TEXTS = [
    "Здравствуйте! Можно записаться на чистку в субботу?",
    "Добрый день, да, есть окно в 11:00. Записать вас?",
    "Сколько стоит имплант под ключ?",
    "Пришлите, пожалуйста, снимок, доктор посмотрит.",
    "Спасибо, до встречи!",
    "У ребёнка болит зуб, можно сегодня?",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=100_000, help="threads in the clinic (default 100000)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in all (default 1000000)")
    parser.add_argument("--big-thread", type=int, default=2000, help="messages of the thread whose page is measured (default 2000)")
    parser.add_argument("--requests", type=int, default=200, help="timed calls per scenario (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured calls per scenario first (default 10)")
    parser.add_argument("--rebuild", action="store_true", help="delete the generated data and generate it again")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the queries of each scenario")
    return parser.parse_args()


# --- data --------------------------------------------------------------------------------------------


def weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _w in choices], weights=[w for _c, w in choices])[0]


def reserve_ids(cur, table: str, count: int) -> list[int]:
    """`count` fresh ids from the table's identity sequence, so that rows can reference each other in COPY."""
    (sequence,) = cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table]).fetchone()
    return [row[0] for row in cur.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [sequence, count])]


def delete_rows(cur, table: str, where: str, params: list, depth: int = 0) -> None:
    """DELETE rows and, first, every row that references them (found through the catalogue's foreign keys)."""
    refs = cur.execute(
        """
        SELECT cl.relname, att.attname
        FROM pg_constraint con
        JOIN pg_class cl ON cl.oid = con.conrelid
        JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1]
        WHERE con.contype = 'f' AND con.confrelid = %s::regclass AND con.conrelid <> con.confrelid
        """,
        [table],
    ).fetchall()
    for ref_table, column in refs:
        delete_rows(cur, ref_table, f'"{column}" IN (SELECT id FROM "{table}" WHERE {where})', params, depth + 1)
    cur.execute(f'DELETE FROM "{table}" WHERE {where}', params)  # names come from the catalogue


def drop_data(clinic_id: int) -> None:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(psycopg_url()) as conn, conn.cursor() as cur:
        delete_rows(cur, "messaging_thread", "clinic_id = %s", [clinic_id])
        delete_rows(cur, "patients_patientinclinic", "clinic_id = %s", [clinic_id])
        delete_rows(cur, "patients_patient", "full_name LIKE %s", [f"{PATIENT_PREFIX} %"])
    print(f"deleted the earlier data in {time.perf_counter() - started:.1f} s")


def generate(args: argparse.Namespace, clinic_id: int, operator_ids: list[int], tag_ids: dict[str, int]) -> None:
    """Patients, contacts, threads with consistent counters, messages and thread tags, with COPY."""
    import psycopg

    rng = random.Random(20261123)
    now = datetime.now(UTC)
    started = time.perf_counter()
    n = args.threads
    rest = max(0, args.messages - args.big_thread)
    mean = rest / max(1, n - 1)
    # Thread 0 is the long one; the others get 1 … 2·mean−1 messages (their mean is `mean`).
    counts = [args.big_thread] + [max(1, round(rng.uniform(0.5, 2 * mean - 0.5))) for _ in range(n - 1)]
    diff, i = rest - sum(counts[1:]), 0
    while diff and n > 1:  # nudge single threads by one message until the total is the one asked for
        i = i % (n - 1) + 1
        step = 1 if diff > 0 else -1
        if counts[i] + step >= 1:
            counts[i] += step
            diff -= step

    with psycopg.connect(psycopg_url()) as conn, conn.cursor() as cur:
        patient_ids = reserve_ids(cur, "patients_patient", n)
        contact_ids = reserve_ids(cur, "patients_patientinclinic", n)
        thread_ids = reserve_ids(cur, "messaging_thread", n)

        with cur.copy("COPY patients_patient (id, relation, full_name, phone, created_at) FROM STDIN") as copy:
            for i, pid in enumerate(patient_ids):
                copy.write_row((pid, "self", f"{PATIENT_PREFIX} {i}", f"+7930{i:07d}", now))
        with cur.copy(
            "COPY patients_patientinclinic (id, first_contact_at, source_channel, utm_source, utm_medium, utm_campaign, "
            "utm_content, utm_term, referrer, notes, clinic_id, patient_id) FROM STDIN"
        ) as copy:
            for cid, pid in zip(contact_ids, patient_ids, strict=True):
                copy.write_row((cid, now, "web", "", "", "", "", "", "", "", clinic_id, pid))
        print(f"  {n} patients and contacts in {time.perf_counter() - started:.1f} s")

        # Each thread's story first (its counters follow from it), then threads, tags and messages.
        plans, thread_rows, tag_rows = [], [], []
        for i, tid in enumerate(thread_ids):
            count = counts[i]
            last = now - timedelta(hours=1) if i == 0 else now - timedelta(seconds=rng.uniform(0, 180 * 86400))
            assignee = None if rng.random() < 0.5 else operator_ids[rng.randrange(len(operator_ids))]
            gap = timedelta(minutes=rng.uniform(1, 30))
            plans.append((tid, count, last, gap, assignee or operator_ids[0]))
            waiting = count % 2 == 1  # patients write the odd messages: the last one is theirs
            status = weighted(rng, STATUSES)
            thread_rows.append(
                (
                    tid,
                    "clinic",
                    weighted(rng, CHANNELS),
                    status,
                    last + timedelta(days=3) if status == "snoozed" else None,
                    1,
                    False,
                    last - gap * count,
                    last,
                    last - gap * (count - 2) if count >= 2 else None,
                    last if waiting else None,
                    count,
                    count,
                    TEXTS[(i + count) % len(TEXTS)][:140],
                    1 if waiting else 0,
                    0,
                    count - 1 if waiting else count,
                    count,
                    count - 1 if waiting else count,
                    count,
                    assignee,
                    clinic_id,
                    contact_ids[i],
                    patient_ids[i],
                )
            )
            tag_rows += [(tid, tag_id) for name, tag_id in tag_ids.items() if rng.random() < TAG_SHARE.get(name, DEFAULT_TAG_SHARE)]
        with cur.copy(
            "COPY messaging_thread (id, kind, channel, status, snoozed_until, priority, sensitive, created_at, last_activity_at, "
            "first_response_at, waiting_since, last_seq, last_public_seq, last_message_preview, staff_unread, patient_unread, "
            "staff_read_seq, patient_read_seq, staff_delivered_seq, patient_delivered_seq, assigned_to_id, clinic_id, contact_id, "
            "patient_id) FROM STDIN"
        ) as copy:
            for row in thread_rows:
                copy.write_row(row)
        with cur.copy("COPY messaging_thread_tags (thread_id, tag_id) FROM STDIN") as copy:
            for row in tag_rows:
                copy.write_row(row)
        print(f"  {n} threads, {len(tag_rows)} thread tags in {time.perf_counter() - started:.1f} s")

        with cur.copy(
            "COPY messaging_message (thread_id, seq, author, sender_id, kind, text, data, client_msg_id, created_at) FROM STDIN"
        ) as copy:
            for i, (tid, count, last, gap, staff_sender) in enumerate(plans):
                for seq in range(1, count + 1):
                    patient_turn = seq % 2 == 1
                    copy.write_row(
                        (
                            tid,
                            seq,
                            "patient" if patient_turn else "staff",
                            None if patient_turn else staff_sender,
                            "text",
                            TEXTS[(i + seq) % len(TEXTS)],
                            "{}",
                            "",
                            last - gap * (count - seq),
                        )
                    )
        print(f"  {sum(counts)} messages in {time.perf_counter() - started:.1f} s; committing …")
    with psycopg.connect(psycopg_url(), autocommit=True) as conn:
        for table in ("patients_patient", "patients_patientinclinic", "messaging_thread", "messaging_message", "messaging_thread_tags"):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(f"generated in {time.perf_counter() - started:.1f} s")


def prepare(args: argparse.Namespace):
    """The clinic, its operators and tags, and the generated data (reused when it has the asked size)."""
    from clinics.models import Tag
    from messaging.models import Message, Thread

    clinic, operators, _document = ensure_clinic(CLINIC_SLUG, name="Bench Inbox", staff=OPERATORS)
    tag_ids = {name: Tag.objects.get_or_create(clinic=clinic, name=name)[0].pk for name in TAGS}
    have = Thread.objects.filter(clinic=clinic).count()
    big = Thread.objects.filter(clinic=clinic).order_by("-last_seq").first()
    if args.rebuild or have != args.threads or big is None or big.last_seq < args.big_thread:
        if have:
            drop_data(clinic.pk)
        print(f"generating {args.threads} threads and about {args.messages} messages …")
        generate(args, clinic.pk, [u.pk for u in operators], tag_ids)
        big = Thread.objects.filter(clinic=clinic).order_by("-last_seq").first()
    else:
        print(f"reusing {have} threads (--rebuild to generate them again)")
    total = Message.objects.filter(thread__clinic=clinic).count()
    print(
        f"clinic {clinic.slug}: {Thread.objects.filter(clinic=clinic).count()} threads, {total} messages; thread {big.pk} has {big.last_seq}"
    )
    return clinic, operators[0], tag_ids, big


# --- measurement -----------------------------------------------------------------------------------------


def scenarios(clinic, operator, tag_ids: dict[str, int], big) -> list[tuple[str, callable]]:
    import psycopg
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from messaging import selectors
    from messaging.selectors import InboxFilter

    raw = psycopg.connect(psycopg_url(), autocommit=True)
    raw_sql = "SELECT * FROM messaging_thread WHERE clinic_id = %s ORDER BY last_activity_at DESC LIMIT 30"
    client = Client()
    client.force_login(operator)

    def get(url: str):
        def call() -> None:
            response = client.get(url, secure=True)
            if response.status_code != 200:
                raise SystemExit(f"GET {url} answered {response.status_code}")

        return call

    def inbox(filters: InboxFilter | None = None):
        return lambda: list(selectors.inbox_threads(user=operator, filters=filters)[:30])

    items = [
        ("raw psycopg: 30 thread rows by thread_inbox", lambda: raw.execute(raw_sql, [clinic.pk]).fetchall()),
        ("inbox_threads first 30", inbox()),
        ("inbox_threads mine", inbox(InboxFilter(mine=True))),
        ("inbox_threads status=open", inbox(InboxFilter(status="open"))),
        ("inbox_threads tag=implants (5% of threads)", inbox(InboxFilter(tag=tag_ids["implants"]))),
        ("inbox_threads tag=vip (1% of threads)", inbox(InboxFilter(tag=tag_ids["vip"]))),
        ("GET /api/threads/", get("/api/threads/")),
    ]
    try:
        items.append(("GET /admin/inbox/", get(reverse("inbox:index"))))
        thread_page = reverse("inbox:thread", args=[big.pk])
    except NoReverseMatch:
        print("(no /admin/inbox/ yet: the API list stands for it)")
        thread_page = None
    items += [
        (f"thread_messages last 50 of {big.last_seq}", lambda: selectors.thread_messages(user=operator, thread=big, limit=50)),
        ("GET /api/threads/<id>/messages/", get(f"/api/threads/{big.pk}/messages/")),
    ]
    if thread_page:
        items.append(("GET /admin/inbox/<id>/", get(thread_page)))
    return items


def explain(items) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for name, call in items[1:]:
        with CaptureQueriesContext(connection) as captured:
            call()
        queries = [q for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
        print(f"\n=== {name}: {len(captured.captured_queries)} queries ===")
        for query in queries:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
                plan = [row[0] for row in cursor.fetchall()]
            print(f"--- {query['sql'][:300]}{' …' if len(query['sql']) > 300 else ''}")
            for line in plan:
                print(f"    {line}")


def measure(items, requests: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for _name, call in items:
            call()
    timings: dict[str, list[float]] = {name: [] for name, _call in items}
    for _ in range(requests):  # round robin: every scenario sees the same noise
        for name, call in items:
            t0 = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - t0)
    return timings


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    setup_django()
    from django.conf import settings
    from django.test.utils import override_settings

    # DEBUG is off; unhashed static URLs spare a collectstatic into the work tree.
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": static}).enable()

    print(f"machine: {machine()}")
    clinic, operator, tag_ids, big = prepare(args)
    items = scenarios(clinic, operator, tag_ids, big)
    if args.explain:
        explain(items)
    print(f"\n{args.requests} calls per scenario after {args.warmup} warm-up, interleaved; operator {operator.username}")
    timings = measure(items, args.requests, args.warmup)

    raw_p95 = percentile(timings[items[0][0]], 95)
    print(f"\n{'scenario':<46} {'p50 ms':>8} {'p95 ms':>8} {'p95/raw':>8}   target p95 < {TARGET_P95_MS:g} ms")
    failed = []
    for name, values in timings.items():
        p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
        ok = p95 < TARGET_P95_MS
        if not ok:
            failed.append(name)
        print(f"{name:<46} {p50:8.2f} {p95:8.2f} {p95 / (raw_p95 * 1000):8.1f}   {verdict(ok)}")
    print(f"machine after the run: {machine()}")
    print(f"\ntarget p95 < {TARGET_P95_MS:g} ms: {verdict(not failed)}{' — ' + ', '.join(failed) if failed else ''}")


if __name__ == "__main__":
    main()
