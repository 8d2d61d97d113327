"""10,000 notifications through a real Celery worker with the console SMS provider.

Measures the whole pipeline as production runs it: the beat sweep fans out one
dispatch task per due notification (opt-out, consent, quiet hours, routes), each
queues its delivery task, the worker claims the delivery (`sending`, attempt row),
calls the provider and records the outcome. Baseline in the same run: the same
worker executing the same number of no-op tasks (one Redis INCR each).

Prints throughput (target ≥ 500 notifications/s), the ratio to the baseline and
duplicates (a delivery handed to the provider twice; target 0).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from common import ROOT, bench_env, machine, setup_django, verdict


def _worker(pool: str, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, **bench_env(), "SMS_PROVIDER": "console", "LOG_LEVEL": "ERROR", "CELERY_TASK_ALWAYS_EAGER": "false"}
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "clinic_crm", "worker", "-P", pool, "-c", str(concurrency),
            "--include", "bench.noop_task", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "error",
        ],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait(condition, timeout: float) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=2_000, help="recipients; each gets notifications/patients of them")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"], help="the worker's pool")
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes (prefork) or threads")
    args = parser.parse_args()

    setup_django()
    import redis
    from common import ensure_clinic, ensure_patient_threads
    from django.conf import settings
    from django.db.models import Count

    from bench.noop_task import bench_noop
    from clinic_crm.celery import app
    from messaging.models import Thread
    from notifications.models import Delivery, DeliveryAttempt, Notification
    from notifications.tasks import dispatch_due_notifications

    app.conf.task_always_eager = False
    r = redis.Redis.from_url(settings.REDIS_URL)
    clinic, _staff, document = ensure_clinic("bench-notify", name="Bench notifications", staff=1)
    threads = ensure_patient_threads(clinic, document, count=args.patients, prefix="bench-notify", phone_base=9170000000)
    Notification.objects.filter(clinic=clinic).delete()
    # Each thread holds a message the patient has not read: otherwise dispatch skips the notice as read in time.
    Thread.objects.filter(pk__in=[t.pk for t in threads]).update(last_seq=1, last_public_seq=1, patient_read_seq=0)
    r.delete("bench:noop")
    app.control.purge()

    print(f"machine: {machine()}")
    worker = _worker(args.pool, args.concurrency)
    try:
        bench_noop.delay()  # the worker is up once the first task is done
        _wait(lambda: int(r.get("bench:noop") or 0) >= 1, 60)
        r.delete("bench:noop")

        start = time.perf_counter()
        for _ in range(args.notifications):
            bench_noop.delay()
        _wait(lambda: int(r.get("bench:noop") or 0) >= args.notifications, 600)
        baseline = args.notifications / (time.perf_counter() - start)

        Notification.objects.bulk_create(
            [
                Notification(clinic=clinic, recipient_id=threads[i % len(threads)].patient.user_id, kind=Notification.Kind.MESSAGE,
                             thread=threads[i % len(threads)], urgent=True, reason="bench")
                for i in range(args.notifications)
            ],
            batch_size=2000,
        )  # fmt: skip
        start = time.perf_counter()
        dispatch_due_notifications.delay()
        pending = Notification.objects.filter(clinic=clinic, status=Notification.Status.PENDING)
        unsent = Delivery.objects.filter(notification__clinic=clinic).exclude(
            status__in=(Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.UNKNOWN)
        )
        _wait(lambda: not pending.exists() and not unsent.exists(), 900)
        elapsed = time.perf_counter() - start
        outcome = dict(Notification.objects.filter(clinic=clinic).values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        if outcome.get(Notification.Status.DISPATCHED, 0) != args.notifications:
            raise SystemExit(f"not every notification was dispatched: {outcome}")
    finally:
        worker.terminate()
        worker.wait(30)

    throughput = args.notifications / elapsed
    handed = DeliveryAttempt.objects.filter(delivery__notification__clinic=clinic, outcome=DeliveryAttempt.Outcome.SENT)
    duplicates = sum(n - 1 for n in handed.values("delivery").annotate(n=Count("pk")).values_list("n", flat=True) if n > 1)
    per_notification = (
        Delivery.objects.filter(notification__clinic=clinic).values("notification").annotate(n=Count("pk")).filter(n__gt=1).count()
    )
    print(f"worker: {args.pool} pool, concurrency {args.concurrency}; broker {settings.CELERY_BROKER_URL}")
    print(f"baseline  no-op tasks        {baseline:8.0f} tasks/s")
    print(
        f"pipeline  notifications      {throughput:8.0f} notifications/s  ({args.notifications} in {elapsed:.1f} s; dispatched 200 and sent 50 per task)"
    )
    print(f"ratio pipeline/baseline      {throughput / baseline:8.2f}")
    print(f"duplicates: {duplicates} deliveries handed to the provider twice, {per_notification} notifications with two SMS deliveries")
    print(f"machine after: {machine()}")
    print(f"target ≥ 500/s: {verdict(throughput >= 500)}; duplicates 0: {verdict(duplicates == 0 and per_notification == 0)}")


if __name__ == "__main__":
    main()
