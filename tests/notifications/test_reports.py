"""Delivery reports from providers: verified ones update the status; unknown or forged ones are 403 and change nothing."""

import base64
import json
from datetime import timedelta

import pytest
from django.test import TestCase

from notifications import services
from notifications.models import Delivery, Preference
from notifications.views import twilio_signature
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_sms(alpha):
    from notifications.models import Notification

    notification = Notification.objects.create(clinic=alpha.clinic, recipient=f.UserFactory(), kind=Notification.Kind.MESSAGE)

    def make(provider, message_id):
        return Delivery.objects.create(
            notification=notification, channel="sms", destination="+79160000001", text="hi", status="sent",
            provider=provider, provider_message_id=message_id,
        )  # fmt: skip

    return make


def test_smsru_report_with_the_secret_marks_delivered(web, settings, sent_sms):
    settings.SMSRU_CALLBACK_SECRET = "s3cret-path"
    delivery = sent_sms("smsru", "202612-1")
    response = web.post("/notifications/reports/smsru/s3cret-path/", {"data[]": ["sms_status\n202612-1\n103\n1764400000"]})
    assert (response.status_code, response.content) == (200, b"100")
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.delivered_at


def test_smsru_failure_report_keeps_the_reason(web, settings, sent_sms):
    settings.SMSRU_CALLBACK_SECRET = "s3cret-path"
    delivery = sent_sms("smsru", "202612-2")
    web.post("/notifications/reports/smsru/s3cret-path/", {"data[]": ["sms_status\n202612-2\n105\n1764400000"]})
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.last_error == "SMS.ru status 105"


def test_smsru_report_with_a_wrong_secret_or_unknown_id_is_forbidden(web, settings, sent_sms):
    settings.SMSRU_CALLBACK_SECRET = "s3cret-path"
    delivery = sent_sms("smsru", "202612-3")
    assert web.post("/notifications/reports/smsru/guess/", {"data[]": ["sms_status\n202612-3\n103\n1"]}).status_code == 403
    assert web.post("/notifications/reports/smsru/s3cret-path/", {"data[]": ["sms_status\nnot-ours\n103\n1"]}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    settings.SMSRU_CALLBACK_SECRET = ""  # not configured: nothing is accepted
    assert web.post("/notifications/reports/smsru//", {"data[]": ["sms_status\n202612-3\n103\n1"]}).status_code == 404


def test_twilio_signed_report_marks_delivered_and_forged_ones_are_refused(web, settings, sent_sms):
    settings.TWILIO_AUTH_TOKEN = "twilio-token"
    delivery = sent_sms("twilio", "SM123")
    url = "http://testserver/notifications/reports/twilio/"
    params = {"MessageSid": "SM123", "MessageStatus": "delivered"}

    forged = web.post(url, params, HTTP_X_TWILIO_SIGNATURE=twilio_signature(url, params, "wrong-token"))
    assert forged.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "sent"

    unknown = {"MessageSid": "SM999", "MessageStatus": "delivered"}
    assert web.post(url, unknown, HTTP_X_TWILIO_SIGNATURE=twilio_signature(url, unknown, "twilio-token")).status_code == 403

    response = web.post(url, params, HTTP_X_TWILIO_SIGNATURE=twilio_signature(url, params, "twilio-token"))
    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_email_delivery_report_through_anymail_with_basic_auth(web, settings, alpha, offline_reply):
    """E-mail sent through an anymail backend; the provider's webhook (Postmark's shape) marks it delivered."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "postmark:hook-secret"}
    notification = offline_reply()
    Preference.objects.create(user=notification.recipient, sms=False)
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.notification_dispatch(
            notification_id=notification.pk, now=alpha.clinic.local(notification.created_at).replace(hour=12) + timedelta(days=1)
        )
    delivery = Delivery.objects.get(notification=notification, channel="email")
    assert delivery.status == "sent" and delivery.provider_message_id

    body = json.dumps(
        {
            "RecordType": "Delivery",
            "MessageID": delivery.provider_message_id,
            "Recipient": "anna@example.ru",
            "DeliveredAt": "2026-11-29T10:00:00Z",
        }
    )
    forged = web.post("/anymail/postmark/tracking/", body, content_type="application/json")
    assert forged.status_code in (400, 403)
    delivery.refresh_from_db()
    assert delivery.status == "sent"

    auth = "Basic " + base64.b64encode(b"postmark:hook-secret").decode()
    response = web.post("/anymail/postmark/tracking/", body, content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
