import pytest

from messaging.services import send_message
from notifications.models import Notification
from tests import factories as f
from tests.appointments.conftest import checkup, day  # noqa: F401 - the bookable clinic, for reminder tests


@pytest.fixture
def anna(alpha):
    """Alpha's patient with a phone and an e-mail, consent given, never online."""
    return f.PatientFactory(full_name="Anna Petrova", phone="+79160000001", email="anna@example.ru")


@pytest.fixture
def anna_thread(alpha, anna):
    return f.ThreadFactory(clinic=alpha.clinic, patient=anna)


@pytest.fixture
def offline_reply(alpha, anna_thread):
    """The operator answers while Anna is offline: the outbox gets one notification for her."""

    def reply(text="Your tests are ready, come any day after 10:00."):
        send_message(thread=anna_thread, sender=alpha.operator, text=text)
        return Notification.objects.filter(recipient=anna_thread.patient.user).latest("pk")

    return reply
