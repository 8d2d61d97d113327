"""Visit reminders: the 24-hour confirm request with its links, the 2-hour reminder, never for a cancelled visit."""

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.test import TestCase

from appointments import reminders
from appointments import services as visits
from appointments.models import Visit
from notifications import services
from notifications.models import Delivery, Notification
from tests.conftest import at
from tests.notifications.conftest import reminder_tick

pytestmark = pytest.mark.django_db


def _sms(route):
    """SMS about the visit (the clinic's "Visit booked" chat message may also reach an offline patient by SMS)."""
    texts = [parse_qs(call.request.content.decode())["msg"][0] for call in route.calls]
    return [text for text in texts if "Dr Dima" in text and "«" not in text]


def test_confirm_request_a_day_before_then_the_short_reminder_each_once(visit, smsru):
    reminder_tick(visit.starts_at - timedelta(hours=25))
    assert not Notification.objects.filter(visit=visit).exists()

    reminder_tick(visit.starts_at - timedelta(hours=23, minutes=59))
    reminder_tick(visit.starts_at - timedelta(hours=23, minutes=58))  # the next tick adds nothing
    confirm = Notification.objects.get(visit=visit)
    assert (confirm.kind, confirm.status) == ("confirm", "dispatched")
    assert len(_sms(smsru)) == 1 and "/v/" in _sms(smsru)[0]

    reminder_tick(visit.starts_at - timedelta(hours=1, minutes=59))
    reminder_tick(visit.starts_at - timedelta(hours=1, minutes=30))
    assert sorted(Notification.objects.filter(visit=visit).values_list("kind", flat=True)) == ["confirm", "reminder"]
    assert len(_sms(smsru)) == 2 and "12:00" in _sms(smsru)[1]


def test_the_link_in_the_sms_confirms_or_cancels_without_signing_in(web, visit, smsru):
    reminder_tick(visit.starts_at - timedelta(hours=23))
    link = next(word for word in _sms(smsru)[0].split() if "/v/" in word)
    path = link[link.index("/v/") :]
    page = web.get(path)
    assert page.status_code == 200 and "I will come" in page.content.decode()
    web.post(path, {"action": "confirm"})
    visit.refresh_from_db()
    assert visit.status == "confirmed"

    web.post(path, {"action": "cancel"})
    visit.refresh_from_db()
    assert visit.status == "cancelled" and visit.cancelled_by == "patient"
    assert web.get(path[:-3] + "xx/").status_code == 404  # an altered link is no key


def test_no_reminder_for_a_cancelled_visit_even_if_already_queued(anna, visit, smsru):
    reminders.visit_reminders_queue(now=visit.starts_at - timedelta(hours=23))  # queued, not yet dispatched
    with TestCase.captureOnCommitCallbacks(execute=True):
        visits.visit_cancel(actor=anna.user, visit=visit)
    assert Notification.objects.get(visit=visit).status == "cancelled"
    reminder_tick(visit.starts_at - timedelta(hours=1))
    assert not Notification.objects.filter(visit=visit, kind="reminder").exists()
    assert _sms(smsru) == []


def test_a_delivery_already_made_is_not_sent_once_the_visit_is_cancelled(anna, visit, smsru):
    reminders.visit_reminders_queue(now=visit.starts_at - timedelta(hours=23))
    notification = Notification.objects.get(visit=visit)
    services.notification_dispatch(notification_id=notification.pk, now=visit.starts_at - timedelta(hours=23))  # on-commit not run
    Visit.objects.filter(pk=visit.pk).update(status="cancelled")
    services.delivery_send(delivery_id=Delivery.objects.get(notification=notification, channel="sms").pk)
    assert _sms(smsru) == []
    assert Delivery.objects.get(notification=notification, channel="sms").status == "failed"


def test_a_moved_visit_gets_its_own_reminders(alpha, anna, visit, day, smsru):
    reminders.visit_reminders_queue(now=visit.starts_at - timedelta(hours=23))
    with TestCase.captureOnCommitCallbacks(execute=True):
        moved = visits.visit_reschedule(actor=anna.user, visit=visit, starts_at=at(alpha.clinic, day, 15))
    assert Notification.objects.get(visit=visit).status == "cancelled"
    reminder_tick(moved.starts_at - timedelta(hours=23))
    assert Notification.objects.get(visit=moved).kind == "confirm"


def test_a_visit_booked_late_gets_only_the_short_reminder(alpha, checkup, anna, anna_thread, day, smsru):
    with TestCase.captureOnCommitCallbacks(execute=True):
        visit = visits.visit_book(
            actor=alpha.operator,
            clinic=alpha.clinic,
            doctor=alpha.doctor,
            service=checkup,
            patient=anna,
            starts_at=at(alpha.clinic, day, 12),
        )
    Visit.objects.filter(pk=visit.pk).update(created_at=visit.starts_at - timedelta(hours=5))
    reminder_tick(visit.starts_at - timedelta(hours=3))
    assert not Notification.objects.filter(visit=visit).exists()
    reminder_tick(visit.starts_at - timedelta(hours=2))
    assert list(Notification.objects.filter(visit=visit).values_list("kind", flat=True)) == ["reminder"]
