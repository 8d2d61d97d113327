"""Sign-in codes go through the outbox like every notice: urgent, at once, the code itself never stored."""

from urllib.parse import parse_qs

import httpx
import pytest
from django.core.cache import cache
from django.test import TestCase

from accounts.destinations import parse_destination
from notifications.models import Delivery, DeliveryAttempt, Notification, Preference
from patients.services import portal_code_request
from tests import factories as f

pytestmark = pytest.mark.django_db

PHONE = "+79161234567"


def _texts(route) -> list[str]:
    return [parse_qs(call.request.content.decode())["msg"][0] for call in route.calls]


def test_a_code_is_an_urgent_notice_sent_at_once_with_the_code_masked_in_the_outbox(api, sms):
    assert api.post("/api/auth/code/", {"destination": PHONE}, format="json").status_code == 202

    code = sms.last_code(PHONE)
    notification = Notification.objects.get(kind=Notification.Kind.CODE)
    assert notification.urgent and notification.status == Notification.Status.DISPATCHED and notification.clinic is None
    delivery = notification.deliveries.get()
    assert (delivery.channel, delivery.destination, delivery.status) == (Delivery.Channel.SMS, PHONE, Delivery.Status.SENT)
    assert code not in delivery.text and "••••••" in delivery.text  # the admin's history never shows the code
    assert _texts(sms.route) == [delivery.text.replace("••••••", code)]
    assert api.post("/api/auth/verify/", {"destination": PHONE, "code": code}, format="json").status_code == 200


def test_a_person_who_opted_out_of_notices_still_gets_the_code_they_asked_for(api, sms):
    pavel = f.PatientFactory(phone=PHONE)
    Preference.objects.create(user=pavel.user, opted_out=True, sms=False)

    assert api.post("/api/auth/code/", {"destination": PHONE}, format="json").status_code == 202

    assert len(sms.messages) == 1
    assert api.post("/api/auth/verify/", {"destination": PHONE, "code": sms.last_code(PHONE)}, format="json").status_code == 200


def test_a_code_replaced_before_it_went_out_is_skipped_and_only_the_new_one_is_sent(api, sms):
    with TestCase.captureOnCommitCallbacks(execute=False) as first_send:
        portal_code_request(destination=parse_destination(PHONE), ip=None)
    assert api.post("/api/auth/code/", {"destination": PHONE}, format="json").status_code == 202
    for callback in first_send:  # the first code's dispatch runs late, after the second was issued
        callback()

    first, second = Notification.objects.filter(kind=Notification.Kind.CODE).order_by("pk")
    assert (first.status, first.skip_reason) == (Notification.Status.SKIPPED, Notification.Skip.CODE_SPENT)
    assert second.status == Notification.Status.DISPATCHED
    assert len(sms.messages) == 1
    assert api.post("/api/auth/verify/", {"destination": PHONE, "code": sms.last_code(PHONE)}, format="json").status_code == 200


def test_a_provider_outage_is_retried_and_the_code_arrives_once(api, respx_mock, settings):
    settings.SMS_PROVIDER, settings.SMSRU_API_ID = "smsru", "test-api-id"
    accepted = httpx.Response(200, json={"status": "OK", "sms": {"79161234567": {"status": "OK", "sms_id": "77-1"}}})
    route = respx_mock.post("https://sms.ru/sms/send").mock(side_effect=[httpx.Response(503), accepted])

    assert api.post("/api/auth/code/", {"destination": PHONE}, format="json").status_code == 202

    assert route.call_count == 2
    delivery = Delivery.objects.get(notification__kind=Notification.Kind.CODE)
    assert (delivery.status, delivery.provider_message_id, delivery.attempts) == (Delivery.Status.SENT, "77-1", 2)
    outcomes = list(delivery.history.values_list("outcome", flat=True))
    assert outcomes == [DeliveryAttempt.Outcome.RETRY, DeliveryAttempt.Outcome.SENT]
    code = _texts(route)[-1].split(": ")[1][:6]
    assert api.post("/api/auth/verify/", {"destination": PHONE, "code": code}, format="json").status_code == 200


def test_a_code_lost_from_the_cache_fails_with_a_reason_instead_of_sending_a_mask(sms):
    with TestCase.captureOnCommitCallbacks(execute=False) as send:
        portal_code_request(destination=parse_destination(PHONE), ip=None)
    cache.clear()  # Redis restarted between the request and the sending
    with TestCase.captureOnCommitCallbacks(execute=True):
        for callback in send:
            callback()

    delivery = Delivery.objects.get(notification__kind=Notification.Kind.CODE)
    assert delivery.status == Delivery.Status.FAILED and "request a new one" in delivery.last_error
    assert sms.messages == []


def test_clinic_staff_never_see_sign_in_codes_in_their_outbox(client, alpha, sms):
    patient = f.PatientFactory(phone=PHONE)
    f.ContactFactory(patient=patient, clinic=alpha.clinic)
    with TestCase.captureOnCommitCallbacks(execute=True):
        portal_code_request(destination=parse_destination(PHONE), ip=None)
    code = Notification.objects.get(kind=Notification.Kind.CODE)
    delivery = code.deliveries.get()

    client.force_login(alpha.owner)
    listing = client.get("/admin/notifications/notification/")
    assert listing.status_code == 200 and f"/admin/notifications/notification/{code.pk}/change/" not in listing.content.decode()
    assert client.get(f"/admin/notifications/notification/{code.pk}/change/").status_code == 302  # "does not exist"
    assert PHONE not in client.get("/admin/notifications/delivery/").content.decode()
    assert client.get(f"/admin/notifications/delivery/{delivery.pk}/change/").status_code == 302
