"""Timed jobs: the beat schedule in settings reaches django-celery-beat's DatabaseScheduler
and, in the embedded default (tasks run in-process), beat itself runs the job.

The scheduler is the real one `celery beat` runs (CELERY_BEAT_SCHEDULER); instead of
waiting 15 minutes, the entry's last run is moved back through the PeriodicTask row,
as an admin editing the job would, and the scheduler is ticked once.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from accounts.models import LoginCode
from clinic_crm.celery import app as celery_app

# The scheduler commits and closes connections as `celery beat` does: it needs real transactions.
pytestmark = pytest.mark.django_db(transaction=True)

JOB = "purge-spent-login-codes"


def login_code(destination: str, *, age: timedelta, used: bool = False) -> LoginCode:
    now = timezone.now()
    code = LoginCode.objects.create(
        channel=LoginCode.Channel.SMS,
        destination=destination,
        code_hash="x" * 64,
        expires_at=now - age + timedelta(minutes=5),
        used_at=now - age + timedelta(minutes=1) if used else None,
    )
    LoginCode.objects.filter(pk=code.pk).update(created_at=now - age)  # created_at is auto_now_add
    return code


@pytest.fixture
def beat():
    """The scheduler `celery beat` would start, with the project's tasks imported as a worker would."""
    celery_app.loader.import_default_modules()
    scheduler = DatabaseScheduler(app=celery_app)
    yield scheduler
    scheduler.close()


def test_settings_schedule_is_installed_as_a_periodic_task(beat):
    job = PeriodicTask.objects.get(name=JOB)
    assert job.task == "accounts.tasks.purge_spent_login_codes"
    assert job.enabled
    assert timedelta(**{job.interval.period: job.interval.every}) == timedelta(minutes=15)
    assert job.task in celery_app.tasks


def test_beat_fires_the_purge_in_process_when_it_is_due(beat):
    spent = login_code("+79160000001", age=timedelta(days=2), used=True)
    expired = login_code("+79160000002", age=timedelta(days=2))
    lapsed_recently = login_code("+79160000003", age=timedelta(minutes=30))  # rate limits still count it
    fresh = login_code("+79160000004", age=timedelta(0))

    # Not due yet: a tick runs nothing.
    beat.tick()
    assert LoginCode.objects.count() == 4

    # Sixteen minutes later, as far as the schedule can tell.
    job = PeriodicTask.objects.get(name=JOB)
    job.last_run_at = timezone.now() - timedelta(minutes=16)
    job.save()

    assert beat.tick() == 0  # 0: beat sent a task and wants to be called again right away

    remaining = set(LoginCode.objects.values_list("pk", flat=True))
    assert spent.pk not in remaining
    assert expired.pk not in remaining
    assert remaining == {lapsed_recently.pk, fresh.pk}

    beat.sync()
    job.refresh_from_db()
    assert job.total_run_count == 1
    assert job.last_run_at > timezone.now() - timedelta(minutes=1)


def test_beat_does_not_fire_the_job_again_before_its_interval(beat):
    first = login_code("+79160000005", age=timedelta(days=3))
    job = PeriodicTask.objects.get(name=JOB)
    job.last_run_at = timezone.now() - timedelta(minutes=16)
    job.save()
    beat.tick()
    assert not LoginCode.objects.filter(pk=first.pk).exists()

    second = login_code("+79160000006", age=timedelta(days=3))
    beat.tick()
    assert LoginCode.objects.filter(pk=second.pk).exists()
