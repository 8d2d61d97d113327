import pytest
from django.test import TestCase

from appointments import reminders
from appointments import services as visits
from messaging.services import send_message
from notifications import services
from notifications.models import Notification
from tests.conftest import at


@pytest.fixture
def offline_reply(alpha, anna_thread):
    """The operator answers while Anna is offline: the outbox gets one notification for her."""

    def reply(text="Your tests are ready, come any day after 10:00."):
        send_message(thread=anna_thread, actor=alpha.operator, text=text)
        return Notification.objects.filter(recipient=anna_thread.patient.user).latest("pk")

    return reply


@pytest.fixture
def visit(alpha, checkup, anna, anna_thread, day):
    """Anna's visit at 12:00 three days ahead, booked by her from the portal."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return visits.visit_book(
            actor=anna.user, clinic=alpha.clinic, doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 12)
        )


def reminder_tick(now):
    """One beat tick of the reminder sweeps: queue what is due, then dispatch and send it (tasks eager, on-commit callbacks run)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        reminders.visit_reminders_queue(now=now)
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.notifications_dispatch_due(now=now)
