"""A bookable clinic: Alpha's doctor Dima works every day 09:00–18:00 (Moscow) and does a 30-minute check-up."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from tests import factories as f


@pytest.fixture
def checkup(alpha):
    return f.bookable_service(alpha.doctor, name="Check-up")


@pytest.fixture
def anna(alpha):
    """Alpha's patient with consent (her clinic thread exists)."""
    patient = f.PatientFactory(full_name="Anna Petrova", phone="+79160000001")
    f.ThreadFactory(clinic=alpha.clinic, patient=patient)
    return patient


@pytest.fixture
def day(alpha):
    """A local date three days ahead in Alpha's zone: past every notice rule, inside every horizon."""
    return timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=3)


def at(clinic, day, hour: int, minute: int = 0) -> datetime:
    """An aware moment at a local wall-clock time of the clinic."""
    return datetime.combine(day, time(hour, minute), tzinfo=clinic.tz)
