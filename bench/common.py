"""Shared parts of the benchmarks: the bench database, Django set-up, percentiles, a staffed clinic.

Run on its own (`python bench/common.py`) it creates the bench database if it is missing
and migrates it; every benchmark does the same before it starts.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/1"
BENCH_PASSWORD_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


BENCH_ENV_DEFAULTS = {
    "DATABASE_URL": DEFAULT_DATABASE_URL,
    "REDIS_URL": DEFAULT_REDIS_URL,
    "DJANGO_SETTINGS_MODULE": "clinic_crm.settings",
    "LOG_LEVEL": "WARNING",
    # Production-like: DEBUG off (no SQL capture, cached templates). The key only signs bench sessions.
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
}


def bench_env() -> dict[str, str]:
    """The environment every benchmark (and the servers it starts) runs with; variables already set win."""
    for key, value in BENCH_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in BENCH_ENV_DEFAULTS}


def create_database_if_missing() -> None:
    """CREATE DATABASE for DATABASE_URL unless it exists (connecting to the server's `postgres` database)."""
    import psycopg
    from psycopg import sql

    url = urlparse(bench_env()["DATABASE_URL"])
    if not url.scheme.startswith("postgres"):
        sys.exit(f"The benchmarks need PostgreSQL; DATABASE_URL is {url.scheme}://…")
    name = url.path.lstrip("/")
    admin_url = urlunparse(url._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def setup_django(*, migrate: bool = True) -> None:
    """django.setup() against the bench database (created and migrated first unless migrate=False)."""
    bench_env()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if migrate:
        create_database_if_missing()
    import django

    django.setup()
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("The benchmarks need DATABASE_URL=postgres://…")
    if not settings.REDIS_URL:
        sys.exit("The benchmarks need REDIS_URL=redis://…")
    # Staff and patients created by the benchmarks never sign in with a password.
    settings.PASSWORD_HASHERS = [BENCH_PASSWORD_HASHER]
    if migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)


def psycopg_url() -> str:
    """DATABASE_URL in the form psycopg accepts."""
    url = urlparse(bench_env()["DATABASE_URL"])
    return urlunparse(url._replace(scheme="postgresql"))


# --- numbers ---------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear between the two nearest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> str:
    """'p50 1.23 ms  p95 …  p99 …  max …' of durations given in seconds."""
    ms = [s * 1000 for s in seconds]
    return (
        f"p50 {percentile(ms, 50):7.2f} ms  p95 {percentile(ms, 95):7.2f} ms  "
        f"p99 {percentile(ms, 99):7.2f} ms  max {max(ms, default=float('nan')):7.2f} ms  mean {statistics.fmean(ms) if ms else float('nan'):7.2f} ms"
    )


def machine() -> str:
    """Cores and load: the figures of a run mean little without them."""
    one, five, _fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


# --- the world -------------------------------------------------------------------------------

CONSENT_TEXT = (
    "Я даю согласие клинике на обработку моих персональных данных, включая данные о здоровье, "
    "для записи на приём и переписки с клиникой (152-ФЗ)."
)


def ensure_clinic(slug: str, *, name: str, staff: int, role: str = "operator"):
    """A clinic with `staff` active members of `role` (usernames <slug>-op<i>) and a published consent text.

    Returns (clinic, [staff users], consent document). Idempotent: rows are reused.
    """
    from django.contrib.auth import get_user_model

    from clinics.models import Clinic, Membership
    from patients.models import ConsentDocument

    User = get_user_model()
    clinic, _ = Clinic.objects.get_or_create(slug=slug, defaults={"name": name, "time_zone": "Europe/Moscow"})
    users = []
    for i in range(staff):
        user, created = User.objects.get_or_create(username=f"{slug}-op{i}", defaults={"is_staff": True, "first_name": f"Op{i}"})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        Membership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
        users.append(user)
    document = ConsentDocument.objects.filter(clinic=clinic).order_by("-version").first()
    if document is None:
        document = ConsentDocument.objects.create(
            clinic=clinic, version=1, title="Согласие на обработку персональных данных", text=CONSENT_TEXT
        )
    return clinic, users, document


def ensure_patient_threads(clinic, document, *, count: int, prefix: str, phone_base: int) -> list:
    """`count` portal patients of the clinic, each with an account, consent and a clinic thread (bulk ORM).

    Patients are named <prefix>-<i>; existing ones are reused. Returns the threads in order of i,
    with patient, patient.user and clinic loaded.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from messaging.models import Thread
    from patients.models import ConsentRecord, Contact, Patient

    User = get_user_model()
    usernames = [f"{prefix}-{i}" for i in range(count)]
    with transaction.atomic():
        have = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
        unusable = make_password(None)
        User.objects.bulk_create([User(username=u, password=unusable) for u in usernames if u not in have], batch_size=2000)
        users = dict(User.objects.filter(username__in=usernames).values_list("username", "pk"))

        have = set(Patient.objects.filter(user_id__in=users.values()).values_list("user_id", flat=True))
        Patient.objects.bulk_create(
            [
                Patient(user_id=users[u], full_name=f"Bench {u}", phone=f"+7{phone_base + i:010d}")
                for i, u in enumerate(usernames)
                if users[u] not in have
            ],
            batch_size=2000,
        )
        patients = dict(Patient.objects.filter(user_id__in=users.values()).values_list("user_id", "pk"))
        patient_ids = [patients[users[u]] for u in usernames]

        have = set(Contact.objects.filter(clinic=clinic, patient_id__in=patient_ids).values_list("patient_id", flat=True))
        Contact.objects.bulk_create([Contact(clinic=clinic, patient_id=pid) for pid in patient_ids if pid not in have], batch_size=2000)
        contacts = dict(Contact.objects.filter(clinic=clinic, patient_id__in=patient_ids).values_list("patient_id", "pk"))

        have = set(
            ConsentRecord.objects.filter(clinic=clinic, document=document, patient_id__in=patient_ids).values_list("patient_id", flat=True)
        )
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    patient_id=pid,
                    clinic=clinic,
                    document=document,
                    document_version=document.version,
                    text_sha256=document.text_sha256,
                    action=ConsentRecord.Action.GRANTED,
                )
                for pid in patient_ids
                if pid not in have
            ],
            batch_size=2000,
        )

        have = set(
            Thread.objects.filter(clinic=clinic, kind=Thread.Kind.CLINIC, patient_id__in=patient_ids).values_list("patient_id", flat=True)
        )
        Thread.objects.bulk_create(
            [Thread(clinic=clinic, patient_id=pid, contact_id=contacts[pid]) for pid in patient_ids if pid not in have], batch_size=2000
        )
    threads = {
        t.patient_id: t
        for t in Thread.objects.filter(clinic=clinic, kind=Thread.Kind.CLINIC, patient_id__in=patient_ids).select_related(
            "patient", "patient__user", "clinic"
        )
    }
    return [threads[pid] for pid in patient_ids]


if __name__ == "__main__":
    setup_django()
    from django.conf import settings

    db = settings.DATABASES["default"]
    print(f"bench database {db['NAME']} on {db['HOST']}:{db['PORT']} is migrated")
