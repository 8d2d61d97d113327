"""A reminder is set at most REMINDER_HORIZON_DAYS ahead, through the API and the portal form; a stored
extreme time (saved before the bound existed) never breaks the pages that list reminders."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from notifications.models import PersonalReminder

pytestmark = pytest.mark.django_db


def _day(clinic, days: int):
    return timezone.localtime(timezone.now(), clinic.tz).date() + timedelta(days=days)


def _post_api(api, clinic, next_at: str, **extra):
    body = {"text": "Check-up", "clinic": clinic.pk, "next_at": next_at, **extra}
    return api.post("/api/reminders/", body, format="json")


@pytest.mark.parametrize("next_at", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59+03:00", "0001-01-01T00:00:00+03:00"])
def test_api_refuses_a_reminder_in_year_9999_or_1(api, alpha, anna, anna_thread, next_at):
    api.force_login(anna.user)
    response = _post_api(api, alpha.clinic, next_at)
    assert response.status_code == 400
    assert response.json()["errors"]["next_at"][0] in (
        f"Give a time at most {settings.PLANNING_HORIZON_DAYS} days ahead.",
        "This time is long past.",
    )
    assert PersonalReminder.objects.count() == 0


def test_api_refuses_a_reminder_past_the_reminder_horizon_and_takes_one_inside_it(api, alpha, anna, anna_thread):
    api.force_login(anna.user)
    too_far = datetime.combine(_day(alpha.clinic, settings.REMINDER_HORIZON_DAYS + 2), time(10), tzinfo=alpha.clinic.tz)
    response = _post_api(api, alpha.clinic, too_far.isoformat())
    assert response.status_code == 400
    assert response.json()["detail"] == f"A reminder can be set at most {settings.REMINDER_HORIZON_DAYS} days ahead."
    inside = datetime.combine(_day(alpha.clinic, settings.REMINDER_HORIZON_DAYS - 2), time(10), tzinfo=alpha.clinic.tz)
    assert _post_api(api, alpha.clinic, inside.isoformat()).status_code == 201


def test_api_refuses_repeating_until_year_9999(api, alpha, anna, anna_thread):
    api.force_login(anna.user)
    tomorrow = datetime.combine(_day(alpha.clinic, 1), time(10), tzinfo=alpha.clinic.tz)
    response = _post_api(api, alpha.clinic, tomorrow.isoformat(), repeat="daily", repeat_until="9999-12-31")
    assert response.status_code == 400
    assert response.json()["errors"]["repeat_until"] == [f"Give a date at most {settings.PLANNING_HORIZON_DAYS} days ahead."]
    response = _post_api(api, alpha.clinic, tomorrow.isoformat(), repeat="daily", repeat_until=_day(alpha.clinic, 400).isoformat())
    assert response.status_code == 400
    assert response.json()["errors"]["repeat_until"] == [f"A reminder can repeat at most {settings.REMINDER_HORIZON_DAYS} days ahead."]
    assert PersonalReminder.objects.count() == 0


def test_portal_form_refuses_a_reminder_in_year_9999(web, alpha, anna, anna_thread):
    web.force_login(anna.user)
    form = {"text": "Check-up", "clinic": alpha.clinic.pk, "patient": anna.pk, "day": "9999-12-31", "at": "23:59", "repeat": "once"}
    response = web.post("/portal/notifications/reminders/new/", form)
    assert response.status_code == 400
    assert f"A reminder can be set at most {settings.REMINDER_HORIZON_DAYS} days ahead." in response.content.decode()
    assert PersonalReminder.objects.count() == 0


def test_a_stored_reminder_in_year_9999_does_not_break_the_lists(api, web, alpha, anna, anna_thread):
    """Moscow is UTC+3: 9999-12-31 23:00 UTC has no local time; the lists show it as far away instead of failing."""
    PersonalReminder.objects.create(
        patient=anna, clinic=alpha.clinic, text="From before the bound", next_at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    )
    api.force_login(anna.user)
    listed = api.get("/api/reminders/")
    assert listed.status_code == 200
    assert listed.json()["results"][0]["text"] == "From before the bound"
    assert listed.json()["results"][0]["next_at"].startswith("9999-12-31")
    web.force_login(anna.user)
    page = web.get("/portal/notifications/")
    assert page.status_code == 200
    assert "From before the bound" in page.content.decode()
