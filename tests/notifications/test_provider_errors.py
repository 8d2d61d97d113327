"""Errors at the e-mail boundary: the outcome is always written, retried only when trying again can help."""

from datetime import datetime, time, timedelta

import pytest
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core.mail.backends import locmem
from django.core.mail.backends.base import BaseEmailBackend
from django.test import TestCase
from django.utils import timezone

from notifications import services
from notifications.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

RAISED: list[Exception] = []


class FailingBackend(BaseEmailBackend):
    """An e-mail provider answering with the errors queued in RAISED (an ESP's API via django-anymail, or a bug), then well."""

    def send_messages(self, email_messages):
        if RAISED:
            raise RAISED.pop(0)
        return locmem.EmailBackend().send_messages(email_messages)


def _send_offline_reply(alpha, offline_reply, settings, *errors):
    settings.EMAIL_BACKEND = "tests.notifications.test_provider_errors.FailingBackend"
    RAISED[:] = list(errors)
    notification = offline_reply()
    noon = datetime.combine(
        timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=1), time(12), tzinfo=alpha.clinic.tz
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.notification_dispatch(notification_id=notification.pk, now=noon)
    return notification


def test_a_provider_error_on_its_side_is_retried_then_sent(alpha, offline_reply, smsru, settings, mailoutbox):
    notification = _send_offline_reply(alpha, offline_reply, settings, AnymailAPIError("ESP down", status_code=503))

    email = Delivery.objects.get(notification=notification, channel="email")  # the retry ran at once (tasks are eager here)
    assert email.status == Delivery.Status.SENT and len(mailoutbox) == 1 and email.attempts == 2
    history = list(email.history.values_list("outcome", "error"))
    assert history == [(DeliveryAttempt.Outcome.RETRY, "e-mail provider error (HTTP 503): ESP down"), (DeliveryAttempt.Outcome.SENT, "")]
    assert Delivery.objects.get(notification=notification, channel="sms").status == Delivery.Status.SENT  # the SMS went regardless


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (AnymailRecipientsRefused("anna@example.ru bounced"), "address refused"),
        (AnymailAPIError("invalid API key", status_code=401), "invalid API key"),
        (RuntimeError("a bug in a backend"), "unexpected error"),
    ],
)
def test_errors_that_another_try_cannot_fix_fail_at_once_with_the_reason(alpha, offline_reply, smsru, settings, error, shown):
    notification = _send_offline_reply(alpha, offline_reply, settings, error)

    email = Delivery.objects.get(notification=notification, channel="email")
    assert email.status == Delivery.Status.FAILED and shown in email.last_error and email.attempts == 1
    assert list(email.history.values_list("outcome", flat=True)) == [DeliveryAttempt.Outcome.FAILED]
    assert Delivery.objects.get(notification=notification, channel="sms").status == Delivery.Status.SENT
    assert smsru.call_count == 1
