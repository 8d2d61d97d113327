"""Booking under contention and the free-slot search at scale, on real PostgreSQL.

(a) race: `--racers` threads (default 50) call appointments.services.visit_book for the same
    doctor and the same slot at once (a barrier releases them together), each with its own
    database connection, as the front desk of a busy clinic (staff actor, real consent check,
    thread message, broadcast). Exactly one must win; every loser must get SlotTaken with
    nearest free times. Repeated for `--rounds` fresh slots.
    Baseline, same run: the same number of threads each INSERT the same visit row with raw
    psycopg (the exclusion constraint lets one through).
(b) search: a clinic with `--doctors` doctors (default 30) that all provide one 30-minute
    service, weekly schedules and `--visits` future visits (default 20,000, spread over the next
    60 days on the grid, generated once with COPY and reused; `--rebuild` regenerates).
    Measured: selectors.free_slots over 14 days for all doctors of the service (as the portal
    asks it). Baseline, same run, interleaved: one psycopg query fetching the same visits and
    schedule rows (what the selector reads, without the Python that intersects them).

Target: free_slots p95 < 50 ms; the race: 1 winner, every loser SlotTaken with alternatives.

    python bench/booking.py [--racers 50] [--rounds 5] [--doctors 30] [--visits 20000] [--requests 100] [--rebuild] [--only race|search]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock

from common import ensure_clinic, ensure_patient_threads, machine, percentile, psycopg_url, setup_django, verdict

TARGET_P95_MS = 50.0
RACE_SLUG = "bench-booking-race"
SEARCH_SLUG = "bench-booking-search"
PATIENT_PREFIX = "Booking Patient"
HORIZON_DAYS = 60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--racers", type=int, default=50, help="threads booking the same slot (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="races, each on a fresh slot (default 5)")
    parser.add_argument("--doctors", type=int, default=30, help="doctors of the search clinic (default 30)")
    parser.add_argument("--visits", type=int, default=20_000, help="future visits of the search clinic (default 20000)")
    parser.add_argument("--requests", type=int, default=100, help="timed free-slot searches (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured searches first (default 5)")
    parser.add_argument("--rebuild", action="store_true", help="delete the generated search data and generate it again")
    parser.add_argument("--only", choices=["race", "search"], help="run one part only")
    return parser.parse_args()


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:8.2f} ms  p95 {percentile(values, 95) * 1000:8.2f} ms  max {max(values) * 1000:8.2f} ms"


# --- (a) the race ------------------------------------------------------------------------------------


def race_world(racers: int):
    """A clinic with one doctor working every day 08:00–20:00, a 30-minute service and `racers` consented contacts."""
    from appointments.models import ScheduleRule, Visit
    from clinics.models import Doctor, Service

    clinic, operators, document = ensure_clinic(RACE_SLUG, name="Bench Booking Race", staff=1)
    doctor, _ = Doctor.objects.get_or_create(clinic=clinic, full_name="Race Doctor")
    service, _ = Service.objects.get_or_create(clinic=clinic, name="Race check-up", defaults={"duration_minutes": 30})
    doctor.services.add(service)
    if not ScheduleRule.objects.filter(doctor=doctor).exists():
        ScheduleRule.objects.bulk_create(
            ScheduleRule(clinic=clinic, doctor=doctor, weekday=d, starts=clock(8), ends=clock(20)) for d in range(7)
        )
    threads = ensure_patient_threads(clinic, document, count=racers, prefix="bench-race", phone_base=7_931_000_000)
    Visit.objects.filter(clinic=clinic).delete()  # every run races on the same empty days
    return clinic, operators[0], doctor, service, [t.patient for t in threads]


def race(args: argparse.Namespace) -> None:
    import psycopg
    from django.db import connection

    from appointments import selectors, services
    from appointments.models import Visit

    clinic, operator, doctor, service, patients = race_world(args.racers)
    tomorrow = datetime.now(clinic.tz).date() + timedelta(days=1)
    slots = selectors.free_slots(clinic=clinic, date_from=tomorrow, days=7, service=service, for_patient=False)
    print(f"\n(a) {args.racers} threads book one slot at once, {args.rounds} rounds; doctor {doctor.pk}, service {service.pk}")

    winners, losers, alternatives, errors, timings = 0, 0, [], [], []
    for round_ in range(args.rounds):
        slot = slots[round_ * 3]
        barrier = threading.Barrier(args.racers)
        results: list[tuple[str, float, int]] = []
        lock = threading.Lock()

        def book(patient, barrier=barrier, slot=slot, lock=lock, results=results) -> None:
            try:
                barrier.wait()
                started = time.perf_counter()
                try:
                    services.visit_book(
                        actor=operator, clinic=clinic, doctor=doctor, service=service, patient=patient, starts_at=slot.starts_at
                    )
                    outcome = ("won", time.perf_counter() - started, 0)
                except services.SlotTaken as exc:
                    outcome = ("taken", time.perf_counter() - started, len(exc.alternatives))
                except Exception as exc:  # counted and printed: the bench must show every failure
                    outcome = (f"error {type(exc).__name__}: {exc}", time.perf_counter() - started, 0)
                with lock:
                    results.append(outcome)
            finally:
                connection.close()

        workers = [threading.Thread(target=book, args=(p,)) for p in patients[: args.racers]]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        held = Visit.objects.filter(doctor=doctor, starts_at=slot.starts_at).exclude(status="cancelled").count()
        won = sum(1 for r in results if r[0] == "won")
        taken = [r for r in results if r[0] == "taken"]
        winners += won
        losers += len(taken)
        alternatives += [r[2] for r in taken]
        errors += [r[0] for r in results if r[0].startswith("error")]
        timings += [r[1] for r in results]
        print(f"  round {round_ + 1}: {datetime.fromtimestamp(slot.starts_at.timestamp(), clinic.tz):%d.%m %H:%M}  winners {won}, "
              f"SlotTaken {len(taken)}, errors {len(results) - won - len(taken)}, visits held in the slot {held}")  # fmt: skip

    # Baseline: the same race as bare INSERTs, the exclusion constraint deciding.
    raw_times: list[float] = []
    raw_wins = 0
    for round_ in range(args.rounds):
        slot = slots[round_ * 3 + 1]
        barrier = threading.Barrier(args.racers)
        lock = threading.Lock()
        outcomes: list[bool] = []

        def insert(patient, barrier=barrier, slot=slot, lock=lock, outcomes=outcomes) -> None:
            with psycopg.connect(psycopg_url(), autocommit=True) as conn:
                barrier.wait()
                started = time.perf_counter()
                try:
                    conn.execute(
                        "INSERT INTO appointments_appointment (clinic_id, doctor_id, patient_id, service_id, room, starts_at, ends_at, status, "
                        "source, created_at, cancelled_by, cancel_reason, cancelled_late) "
                        "VALUES (%s, %s, %s, %s, '', %s, %s, 'booked', 'operator', now(), '', '', false)",
                        [clinic.pk, doctor.pk, patient.pk, service.pk, slot.starts_at, slot.ends_at],
                    )
                    ok = True
                except psycopg.errors.ExclusionViolation:
                    ok = False
                elapsed = time.perf_counter() - started
            with lock:
                raw_times.append(elapsed)
                outcomes.append(ok)

        workers = [threading.Thread(target=insert, args=(p,)) for p in patients[: args.racers]]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        raw_wins += sum(outcomes)

    total = args.racers * args.rounds
    print(f"  visit_book:        {ms(timings)}  (per request, barrier to return, {total} requests)")
    print(f"  raw INSERT:        {ms(raw_times)}  (winners {raw_wins} of {args.rounds} rounds)")
    print(f"  ratio p50 visit_book/raw = {percentile(timings, 50) / percentile(raw_times, 50):.1f}")
    print(f"  winners {winners} in {args.rounds} rounds (want {args.rounds}: one a round): {verdict(winners == args.rounds)}")
    with_alts = sum(1 for a in alternatives if a > 0)
    print(f"  losers {losers}, with alternatives {with_alts} (nearest free times offered: {min(alternatives, default=0)}–{max(alternatives, default=0)})"
          f": {verdict(losers == total - args.rounds and with_alts == losers)}")  # fmt: skip
    if errors:
        print(f"  ERRORS {len(errors)}: {sorted(set(errors))[:5]}")


# --- (b) the search ----------------------------------------------------------------------------------


def search_world(args: argparse.Namespace):
    """The clinic, its doctors with schedules, one service; the visits generated when missing or too few."""
    from appointments.models import ScheduleRule, Visit
    from clinics.models import Doctor, Service

    clinic, _operators, _document = ensure_clinic(SEARCH_SLUG, name="Bench Booking Search", staff=1)
    service, _ = Service.objects.get_or_create(clinic=clinic, name="Search check-up", defaults={"duration_minutes": 30})
    doctors = list(Doctor.objects.filter(clinic=clinic).order_by("pk"))
    for i in range(len(doctors), args.doctors):
        doctors.append(Doctor.objects.create(clinic=clinic, full_name=f"Search Doctor {i:02d}"))
    doctors = doctors[: args.doctors]
    for i, doctor in enumerate(doctors):
        doctor.services.add(service)
        if not ScheduleRule.objects.filter(doctor=doctor).exists():
            days = range(6) if i % 3 else range(5)
            ScheduleRule.objects.bulk_create(
                [ScheduleRule(clinic=clinic, doctor=doctor, weekday=d, starts=clock(9), ends=clock(14)) for d in days]
                + [ScheduleRule(clinic=clinic, doctor=doctor, weekday=d, starts=clock(15), ends=clock(20)) for d in days]
            )
    have = Visit.objects.filter(clinic=clinic, starts_at__gt=datetime.now(UTC)).count()
    if args.rebuild or have < args.visits * 0.9:
        generate(clinic, service, doctors, args.visits)
    else:
        print(f"reusing {have} future visits (--rebuild to generate them again)")
    return clinic, service, doctors


def generate(clinic, service, doctors, count: int) -> None:
    """`count` visits on free grid slots of the next HORIZON_DAYS days, with COPY; patients made with COPY too."""
    import psycopg

    from appointments.selectors import free_slots

    started = time.perf_counter()
    with psycopg.connect(psycopg_url(), autocommit=True) as conn:
        conn.execute("DELETE FROM appointments_appointment WHERE clinic_id = %s", [clinic.pk])
    today = datetime.now(clinic.tz).date()
    slots = []
    for first in range(0, HORIZON_DAYS, 31):
        slots += free_slots(clinic=clinic, date_from=today + timedelta(days=first), days=min(31, HORIZON_DAYS - first), service=service,
                            for_patient=False)  # fmt: skip
    rng = random.Random(20261129)
    chosen = rng.sample(slots, min(count, len(slots)))
    with psycopg.connect(psycopg_url()) as conn, conn.cursor() as cur:
        patients = [row[0] for row in cur.execute("SELECT id FROM patients_patient WHERE full_name LIKE %s", [f"{PATIENT_PREFIX} %"])]
        if len(patients) < 2000:
            with cur.copy("COPY patients_patient (relation, full_name, phone, created_at) FROM STDIN") as copy:
                for i in range(len(patients), 2000):
                    copy.write_row(("self", f"{PATIENT_PREFIX} {i}", f"+7932{i:07d}", datetime.now(UTC)))
            patients = [row[0] for row in cur.execute("SELECT id FROM patients_patient WHERE full_name LIKE %s", [f"{PATIENT_PREFIX} %"])]
        with cur.copy(
            "COPY appointments_appointment (clinic_id, doctor_id, patient_id, service_id, room, starts_at, ends_at, status, source, "
            "created_at, cancelled_by, cancel_reason, cancelled_late) FROM STDIN"
        ) as copy:
            for slot in chosen:
                status = "confirmed" if rng.random() < 0.3 else "booked"
                copy.write_row(
                    (clinic.pk, slot.doctor_id, rng.choice(patients), service.pk, "", slot.starts_at, slot.ends_at, status, "portal",
                     datetime.now(UTC), "", "", False)
                )  # fmt: skip
    with psycopg.connect(psycopg_url(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE appointments_appointment")
    print(
        f"generated {len(chosen)} future visits over {HORIZON_DAYS} days ({len(slots)} free slots before) in {time.perf_counter() - started:.1f} s"
    )


def search(args: argparse.Namespace) -> None:
    import psycopg

    from appointments import selectors
    from appointments.models import Visit

    clinic, service, doctors = search_world(args)
    today = datetime.now(clinic.tz).date()
    start = datetime.combine(today, clock.min, tzinfo=clinic.tz)
    end = start + timedelta(days=14)
    in_window = Visit.objects.filter(clinic=clinic, starts_at__gte=start, starts_at__lt=end).count()
    total = Visit.objects.filter(clinic=clinic, starts_at__gt=datetime.now(UTC)).count()
    print(f"\n(b) free_slots over 14 days for all {len(doctors)} doctors of one service; {total} future visits, {in_window} in the window")

    raw = psycopg.connect(psycopg_url(), autocommit=True)
    doctor_ids = [d.pk for d in doctors]
    raw_sql = (
        "SELECT doctor_id, 0 AS kind, extract(epoch FROM starts_at) AS a, extract(epoch FROM ends_at) AS b FROM appointments_appointment "
        "WHERE doctor_id = ANY(%(ids)s) AND status IN ('booked', 'confirmed', 'completed', 'no_show') AND starts_at < %(end)s AND ends_at > %(start)s "
        "UNION ALL SELECT doctor_id, 1, weekday, extract(epoch FROM starts) FROM appointments_schedulerule WHERE doctor_id = ANY(%(ids)s) "
        "UNION ALL SELECT doctor_id, 2, extract(epoch FROM date_from::timestamp), extract(epoch FROM date_to::timestamp) "
        "FROM appointments_scheduleexception WHERE doctor_id = ANY(%(ids)s) AND date_from < %(end)s AND date_to >= %(start)s"
    )
    params = {"ids": doctor_ids, "start": start, "end": end}

    def orm():
        return selectors.free_slots(clinic=clinic, date_from=today, days=14, service=service)

    def bare():
        return raw.execute(raw_sql, params).fetchall()

    rows = len(bare())
    found = len(orm())
    for _ in range(args.warmup):
        orm()
        bare()
    orm_times, raw_times = [], []
    for _ in range(args.requests):  # interleaved: both see the same noise
        t0 = time.perf_counter()
        orm()
        orm_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare()
        raw_times.append(time.perf_counter() - t0)
    p95 = percentile(orm_times, 95) * 1000
    print(f"  free_slots:          {ms(orm_times)}  ({found} free slots)")
    print(f"  raw psycopg query:   {ms(raw_times)}  ({rows} visit + schedule rows)")
    print(f"  ratio p95 free_slots/raw = {percentile(orm_times, 95) / percentile(raw_times, 95):.1f}")
    print(f"  target p95 < {TARGET_P95_MS:g} ms: {verdict(p95 < TARGET_P95_MS)}")


def main() -> None:
    args = parse_args()
    setup_django()
    print(f"machine: {machine()}")
    if args.only != "search":
        race(args)
    if args.only != "race":
        search(args)
    print(f"\nmachine after the run: {machine()}")


if __name__ == "__main__":
    main()
