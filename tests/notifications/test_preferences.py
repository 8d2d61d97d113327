"""The patient's notification page: channels, opting out, and reminders they set for themselves."""

from datetime import datetime, time, timedelta
from urllib.parse import parse_qs

import pytest
from django.test import TestCase
from django.utils import timezone

from notifications import services
from notifications.models import Notification, PersonalReminder, Preference
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_patient_chooses_channels_and_opts_out(web, anna, anna_thread):
    web.force_login(anna.user)
    page = web.get("/portal/notifications/")
    assert page.status_code == 200 and "How clinics may reach me" in page.content.decode()
    web.post("/portal/notifications/", {"form": "preferences", "email": "on", "promotions": "on"})
    assert Preference.objects.filter(user=anna.user, sms=False, email=True, promotions=True, opted_out=False).exists()
    web.post("/portal/notifications/", {"form": "preferences", "opted_out": "on"})
    assert Preference.objects.get(user=anna.user).opted_out


def _reminder_form(alpha, anna, day, **extra):
    return {
        "form": "reminder", "text": "Take the antibiotic", "clinic": alpha.clinic.pk, "patient": anna.pk,
        "day": day.isoformat(), "at": "10:00", "repeat": "daily", "repeat_until": (day + timedelta(days=2)).isoformat(), **extra,
    }  # fmt: skip


def test_a_daily_reminder_is_sent_each_day_then_stops(web, alpha, anna, anna_thread, smsru):
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=1)
    web.force_login(anna.user)
    response = web.post("/portal/notifications/", _reminder_form(alpha, anna, day), follow=True)
    assert "Reminder set." in response.content.decode()
    reminder = PersonalReminder.objects.get()
    assert reminder.next_at == datetime.combine(day, time(10), tzinfo=alpha.clinic.tz)

    for offset in range(4):
        moment = datetime.combine(day + timedelta(days=offset), time(10, 1), tzinfo=alpha.clinic.tz)
        services.personal_reminders_queue(now=moment)
        services.personal_reminders_queue(now=moment)  # a second tick adds nothing
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.notifications_dispatch_due(now=moment)
    texts = [parse_qs(c.request.content.decode())["msg"][0] for c in smsru.calls]
    assert len(texts) == 3 and all("Take the antibiotic" in t for t in texts)  # three days, then the end
    reminder.refresh_from_db()
    assert not reminder.is_active


def test_reminder_refusals_are_shown_on_the_form(web, alpha, beta, anna, anna_thread):
    web.force_login(anna.user)
    yesterday = timezone.localtime(timezone.now(), alpha.clinic.tz).date() - timedelta(days=1)
    page = web.post("/portal/notifications/", _reminder_form(alpha, anna, yesterday)).content.decode()
    assert "Choose a time in the future." in page
    page = web.post("/portal/notifications/", _reminder_form(alpha, anna, yesterday + timedelta(days=3), text="   ")).content.decode()
    assert "This field is required." in page or "Write what to remind about." in page
    stranger = f.PatientFactory()
    page = web.post(
        "/portal/notifications/", _reminder_form(alpha, anna, yesterday + timedelta(days=3), patient=stranger.pk)
    ).content.decode()
    assert "Select a valid choice." in page
    page = web.post(
        "/portal/notifications/", _reminder_form(alpha, anna, yesterday + timedelta(days=3), clinic=beta.clinic.pk)
    ).content.decode()
    assert "Select a valid choice." in page
    assert not PersonalReminder.objects.exists()


def test_a_removed_reminder_sends_nothing(web, alpha, anna, anna_thread, smsru):
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=1)
    web.force_login(anna.user)
    web.post("/portal/notifications/", _reminder_form(alpha, anna, day))
    reminder = PersonalReminder.objects.get()
    moment = datetime.combine(day, time(10, 1), tzinfo=alpha.clinic.tz)
    services.personal_reminders_queue(now=moment)
    other = f.PatientFactory()
    web.force_login(other.user)
    web.post("/portal/notifications/", {"form": "cancel", "reminder": reminder.pk})  # not hers: nothing happens
    assert PersonalReminder.objects.get().is_active
    web.force_login(anna.user)
    web.post("/portal/notifications/", {"form": "cancel", "reminder": reminder.pk})
    assert Notification.objects.get(personal_reminder=reminder).status == "cancelled"
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.notifications_dispatch_due(now=moment)
    assert smsru.call_count == 0
