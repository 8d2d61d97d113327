"""Shared fixtures: two clinics with named people in every role, an SMS provider at the HTTP boundary."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import time_machine
from django.test import Client, TestCase
from django.utils import timezone
from rest_framework.test import APIClient

from clinic_crm.celery import app as celery_app
from clinics.tenancy import Role
from tests import factories as f

# Tests run tasks in-process even where REDIS_URL points at a real broker; the
# notification issue adds tests that start a real worker on purpose.
celery_app.conf.task_always_eager = True


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API leaves an event loop running in the main
    thread, and async (socket) tests cannot start their own after that."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None or "tests/browser/" in item.nodeid)


# The proof that no test depends on the date or on where in a minute it starts (README, Tests):
# CLOCK_OFFSET_DAYS moves every test's clock that many days from the real one, CLOCK_START_SECOND
# starts every test at that second of a minute; the clock ticks on from there.
CLOCK_OFFSET_DAYS = float(os.environ.get("CLOCK_OFFSET_DAYS") or 0)
CLOCK_START_SECOND = int(os.environ["CLOCK_START_SECOND"]) if os.environ.get("CLOCK_START_SECOND") else None
_clock_floor: list[datetime] = []  # where the previous test's clock stopped: time only goes forward


def _next_at_second(moment: datetime, second: int) -> datetime:
    start = moment.replace(second=second, microsecond=0)
    return start if start >= moment else start + timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clock_under_proof():
    if not CLOCK_OFFSET_DAYS and CLOCK_START_SECOND is None:
        yield
        return
    start = max([datetime.now(UTC) + timedelta(days=CLOCK_OFFSET_DAYS), *_clock_floor])
    if CLOCK_START_SECOND is not None:
        start = _next_at_second(start, CLOCK_START_SECOND)
    with time_machine.travel(start, tick=True):
        yield
        _clock_floor[:] = [datetime.now(UTC)]


@pytest.fixture
def clock():
    """A stopped clock for the whole test (name it before the fixtures that write rows): five seconds
    into the next minute of the current time, so a per-minute window holds the entire scenario.
    `clock.shift(seconds)` / `clock.move_to(moment)` move it."""
    with time_machine.travel(_next_at_second(datetime.now(UTC), 5), tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _isolated_state(monkeypatch, tmp_path):
    """Every test starts with an empty cache (send throttle and presence are keyed by user ids,
    which repeat between tests) and keeps patients' files in its own folder, not ./private
    (the FileFields hold their storage object, so settings overrides would not reach them)."""
    from django.core.cache import cache
    from django.core.files.storage import FileSystemStorage

    from messaging.models import Attachment

    cache.clear()
    storage = FileSystemStorage(location=str(tmp_path / "private"), base_url=None)
    for name in ("file", "thumbnail"):
        monkeypatch.setattr(Attachment._meta.get_field(name), "storage", storage)
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Argon2 costs ~50 ms per hash by design; factories hash hundreds of staff passwords.
    tests/platform/test_settings.py checks that production hashes with Argon2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class ClinicWorld:
    clinic: object
    owner: object
    manager: object
    operator: object
    doctor_user: object
    doctor: object

    def user(self, role: str):
        return {"owner": self.owner, "manager": self.manager, "operator": self.operator, "doctor": self.doctor_user}[role]


def _clinic_world(slug: str, name: str, tz: str, people: dict[str, str]) -> ClinicWorld:
    clinic = f.ClinicFactory(slug=slug, name=name, time_zone=tz)
    users = {}
    for role, username in people.items():
        users[role] = f.UserFactory(username=username, is_staff=True)
        f.MembershipFactory(user=users[role], clinic=clinic, role=role)
    doctor = f.DoctorFactory(clinic=clinic, user=users[Role.DOCTOR], full_name=f"Dr {people[Role.DOCTOR].title()}")
    return ClinicWorld(clinic, users[Role.OWNER], users[Role.MANAGER], users[Role.OPERATOR], users[Role.DOCTOR], doctor)


@pytest.fixture
def alpha(db) -> ClinicWorld:
    """Clinic Alpha (Moscow): alice owns it, mark manages, olga operates, dima is a doctor."""
    return _clinic_world(
        "alpha", "Alpha Dental", "Europe/Moscow",
        {Role.OWNER: "alice", Role.MANAGER: "mark", Role.OPERATOR: "olga", Role.DOCTOR: "dima"},
    )  # fmt: skip


@pytest.fixture
def beta(db) -> ClinicWorld:
    """Clinic Beta (Yekaterinburg): bob owns it, bella manages, oscar operates, dora is a doctor."""
    return _clinic_world(
        "beta", "Beta Health", "Asia/Yekaterinburg",
        {Role.OWNER: "bob", Role.MANAGER: "bella", Role.OPERATOR: "oscar", Role.DOCTOR: "dora"},
    )  # fmt: skip


@pytest.fixture
def checkup(alpha):
    """A bookable clinic: Alpha's doctor Dima works every day 09:00–18:00 (Moscow) and does a 30-minute check-up."""
    return f.bookable_service(alpha.doctor, name="Check-up")


@pytest.fixture
def day(alpha) -> date:
    """A local date three days ahead in Alpha's zone: past every notice rule, inside every horizon."""
    return timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=3)


def at(clinic, day: date, hour: int, minute: int = 0) -> datetime:
    """An aware moment at a local wall-clock time of the clinic."""
    return datetime.combine(day, time(hour, minute), tzinfo=clinic.tz)


class _RunsOnCommit:
    """Test clients whose requests run their on-commit callbacks, as a real request's commit would.

    pytest-django wraps each test in a transaction that never commits; without
    this, nothing a service schedules with transaction.on_commit would happen.
    """

    def request(self, *args, **kwargs):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(*args, **kwargs)


class CommittingAPIClient(_RunsOnCommit, APIClient):
    pass


class CommittingClient(_RunsOnCommit, Client):
    pass


@pytest.fixture
def api() -> APIClient:
    return CommittingAPIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def web() -> Client:
    """A browser-like client for portal and admin pages, in English."""
    return CommittingClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def superuser(db):
    return f.UserFactory(username="root", is_staff=True, is_superuser=True)


class SmsOutbox:
    """SMS.ru as seen from the wire: every request our adapter makes is kept here."""

    def __init__(self, route: respx.Route):
        self.route = route

    @property
    def messages(self) -> list[dict[str, str]]:
        out = []
        for call in self.route.calls:
            form = {k: v[0] for k, v in parse_qs(call.request.content.decode()).items()}
            out.append(form)
        return out

    def last_code(self, phone: str) -> str:
        digits = phone.lstrip("+")
        for message in reversed(self.messages):
            if message.get("to") == digits and (code := re.search(r"\b(\d{6})\b", message["msg"])):
                return code.group(1)
        raise AssertionError(f"No SMS was sent to {phone}")


@pytest.fixture
def sms(smsru) -> SmsOutbox:
    """Route codes through the SMS.ru adapter, answered by respx at the HTTP boundary; read them back with last_code."""
    return SmsOutbox(smsru)


@pytest.fixture
def anna(db):
    """Anna Petrova, a portal patient with a phone and an e-mail; never online. anna_thread makes her Alpha's."""
    return f.PatientFactory(full_name="Anna Petrova", phone="+79160000001", email="anna@example.ru")


@pytest.fixture
def anna_thread(alpha, anna):
    """Anna's conversation with Alpha: she is Alpha's patient (consent given) once it exists."""
    return f.ThreadFactory(clinic=alpha.clinic, patient=anna)


@pytest.fixture
def boris_thread(beta):
    """Boris, a patient of Beta, and his thread: what Alpha's people must never reach."""
    return f.ThreadFactory(clinic=beta.clinic, patient=f.PatientFactory(full_name="Boris Betov", phone="+79160000002"))


@pytest.fixture
def pavel(db):
    """A portal patient with no clinic yet."""
    return f.PatientFactory(full_name="Pavel Petrov", phone="+79165550101")


@pytest.fixture
def smsru(settings):
    """SMS.ru at the HTTP boundary: every request is recorded, each answered with a fresh message id."""
    settings.SMS_PROVIDER = "smsru"
    settings.SMSRU_API_ID = "test-api-id"
    counter = iter(range(1, 10_000))

    def accept(request):
        sms_id = f"2026-{next(counter)}"
        return httpx.Response(
            200, json={"status": "OK", "status_code": 100, "sms": {"79160000001": {"status": "OK", "status_code": 100, "sms_id": sms_id}}}
        )

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post("https://sms.ru/sms/send").mock(side_effect=accept)
        mock.route(host="127.0.0.1").pass_through()  # the browser tests' live servers
        mock.route(host="localhost").pass_through()
        yield route
