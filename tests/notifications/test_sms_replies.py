"""Replies to the 24-hour confirm request by SMS: "1" confirms, "2" cancels, through Twilio's signed inbound webhook.

The confirm request goes through the real pipeline (queue → dispatch → send), with
Twilio's HTTP API answered by respx; the patient's reply arrives as Twilio posts it.
"""

from datetime import timedelta
from itertools import count
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from django.test import TestCase

from appointments import reminders
from appointments import selectors as visit_reads
from appointments import services as visits
from appointments.models import BookingRules, Visit
from audit.models import AuditEvent
from notifications import services
from notifications.models import Delivery, Notification
from notifications.views import twilio_signature
from tests import factories as f
from tests.conftest import at
from tests.notifications.conftest import reminder_tick

pytestmark = pytest.mark.django_db

TOKEN = "twilio-token"
REPLY_URL = "http://testserver/notifications/replies/twilio/"
ANNA_PHONE = "+79160000001"


@pytest.fixture
def twilio(settings):
    """Twilio at the HTTP boundary, each message accepted with a fresh SID. The clinic writes in English here,
    so the assertions read the source strings whatever the translations say."""
    settings.LANGUAGE_CODE = "en"
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = "ACtest"
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    sids = count(1)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post("https://api.twilio.com/2010-04-01/Accounts/ACtest/Messages.json").mock(
            side_effect=lambda request: httpx.Response(201, json={"sid": f"SM{next(sids):032d}"})
        )
        mock.route(host="127.0.0.1").pass_through()
        mock.route(host="localhost").pass_through()
        yield route


def _texted(route, phone=ANNA_PHONE):
    """The confirm requests Twilio was asked to send to `phone` (the link to /v/ marks them)."""
    bodies = [parse_qs(call.request.content.decode()) for call in route.calls]
    return [b["Body"][0] for b in bodies if b["To"][0] == phone and "/v/" in b["Body"][0]]


_message_ids = count(1)


def _reply(web, body, phone=ANNA_PHONE, *, token=TOKEN, sid=None):
    params = {"From": phone, "To": "+15005550006", "Body": body, "MessageSid": sid or f"SMin{next(_message_ids):030d}"}
    return web.post(REPLY_URL, params, HTTP_X_TWILIO_SIGNATURE=twilio_signature(REPLY_URL, params, token))


def _answer(response) -> str:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    body = response.content.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>') and body.endswith("</Response>")
    return body


def _replies(visit):
    return list(AuditEvent.objects.filter(action="visit.sms_reply", target=f"appointments.Visit:{visit.pk}").values_list("data", flat=True))


def test_signed_1_confirms_the_visit_and_a_second_1_just_says_so(web, visit, twilio):
    reminder_tick(visit.starts_at - timedelta(hours=23))
    [request] = _texted(twilio)
    assert "Reply 1 to confirm or 2 to cancel." in request and "/v/" in request  # the link stays for those who prefer it

    answer = _answer(_reply(web, "1"))
    assert "<Message>Alpha Dental: visit on" in answer and "12:00 confirmed. Thank you!</Message>" in answer
    visit.refresh_from_db()
    assert visit.status == "confirmed" and visit.confirmed_at

    again = _answer(_reply(web, " Yes! "))
    assert "12:00 is already confirmed." in again
    visit.refresh_from_db()
    assert visit.status == "confirmed"
    assert [(r["reply"], r["outcome"], r["provider"]) for r in _replies(visit)] == [
        ("Yes!", "already_confirmed", "twilio"),
        ("1", "confirmed", "twilio"),
    ]  # newest first: staff see the visit was confirmed by SMS
    assert AuditEvent.objects.filter(action="visit.confirmed", actor=visit.patient.user).count() == 1


def test_russian_no_in_capitals_cancels_and_frees_the_slot(web, alpha, checkup, day, visit, twilio):
    def free_at_noon():
        slots = visit_reads.free_slots(clinic=alpha.clinic, date_from=day, days=1, service=checkup, doctor_ids=[alpha.doctor.pk])
        return visit.starts_at in {slot.starts_at for slot in slots}

    reminder_tick(visit.starts_at - timedelta(hours=23))
    assert not free_at_noon()

    answer = _answer(_reply(web, "НЕТ"))
    assert "Alpha Dental: visit on" in answer and "12:00 cancelled.</Message>" in answer
    visit.refresh_from_db()
    assert (visit.status, visit.cancelled_by, visit.cancelled_late) == ("cancelled", "patient", False)
    assert visit.cancelled_by_user == visit.patient.user
    assert free_at_noon()


def test_a_reply_inside_the_late_cancel_window_still_cancels_and_counts_as_late(web, alpha, visit, twilio):
    reminder_tick(visit.starts_at - timedelta(hours=23))
    BookingRules.objects.create(clinic=alpha.clinic, late_cancel_hours=100)  # three days ahead is "late" now

    assert "cancelled (late: less than the clinic's notice before the visit).</Message>" in _answer(_reply(web, "отмена"))
    visit.refresh_from_db()
    assert (visit.status, visit.cancelled_late) == ("cancelled", True)


def test_other_words_reach_the_operators_in_the_thread_and_change_nothing(web, settings, visit, anna_thread, twilio):
    reminder_tick(visit.starts_at - timedelta(hours=23))
    answer = _answer(_reply(web, "Can I come at 13:00 instead?", sid="SMwords"))
    assert "Alpha Dental got your message. To confirm the visit reply 1, to cancel reply 2." in answer
    assert f"{settings.SITE_URL}/portal/threads/{anna_thread.pk}/" in answer
    visit.refresh_from_db()
    assert visit.status == "booked"
    assert [r["outcome"] for r in _replies(visit)] == ["passed"]
    anna_thread.refresh_from_db()
    assert anna_thread.last_message_preview == "Can I come at 13:00 instead?" and anna_thread.staff_read_seq < anna_thread.last_seq
    _reply(web, "Can I come at 13:00 instead?", sid="SMwords")  # Twilio retries the webhook: still one message
    assert anna_thread.messages.filter(text="Can I come at 13:00 instead?").count() == 1


def test_forged_or_unsigned_replies_are_refused_and_change_nothing(web, settings, visit, twilio):
    reminder_tick(visit.starts_at - timedelta(hours=23))
    assert _reply(web, "2", token="guessed-token").status_code == 403
    assert web.post(REPLY_URL, {"From": ANNA_PHONE, "Body": "2", "MessageSid": "SMx"}).status_code == 403
    settings.TWILIO_AUTH_TOKEN = ""  # not configured: nothing is accepted, not even a request "signed" with an empty key
    assert _reply(web, "2", token="").status_code == 403
    visit.refresh_from_db()
    assert visit.status == "booked"
    assert _replies(visit) == []


def test_a_number_without_a_pending_confirm_request_is_told_so(web, visit, twilio):
    nothing = "<Message>No upcoming visit to confirm from this number.</Message>"
    assert nothing in _answer(_reply(web, "1"))  # Anna's request has not been sent yet
    reminder_tick(visit.starts_at - timedelta(hours=23))
    assert nothing in _answer(_reply(web, "1", phone="+79169999999"))
    assert nothing in _answer(_reply(web, "1", phone="not a phone"))
    visit.refresh_from_db()
    assert visit.status == "booked"

    assert "confirmed" in _answer(_reply(web, "да"))
    with TestCase.captureOnCommitCallbacks(execute=True):
        visits.visit_cancel(actor=visit.patient.user, visit=visit)
    assert nothing in _answer(_reply(web, "1"))  # the visit is gone: nothing left to confirm


def test_the_same_twilio_message_twice_is_applied_once(web, visit, twilio):
    reminder_tick(visit.starts_at - timedelta(hours=23))
    assert "confirmed" in _answer(_reply(web, "ok", sid="SMsame"))
    assert _answer(_reply(web, "ok", sid="SMsame")).endswith("<Response></Response>")  # no second SMS, no second record
    assert len(_replies(visit)) == 1


def test_the_phone_decides_the_visit_never_another_clinics_or_patients(web, alpha, beta, visit, day, twilio):
    """Boris (clinic Beta) and Anna (Alpha) both got a confirm request: each reply touches only the sender's own visit."""
    boris = f.PatientFactory(full_name="Boris Orlov", phone="+79160000002")
    f.ThreadFactory(clinic=beta.clinic, patient=boris)
    beta_visit = f.VisitFactory(doctor=beta.doctor, patient=boris, starts_at=at(beta.clinic, day, 12))
    reminder_tick(visit.starts_at - timedelta(hours=23))
    assert len(_texted(twilio)) == 1 and len(_texted(twilio, phone="+79160000002")) == 1

    assert "Beta Health: visit on" in _answer(_reply(web, "cancel", phone="+79160000002"))
    beta_visit.refresh_from_db()
    visit.refresh_from_db()
    assert (beta_visit.status, visit.status) == ("cancelled", "booked")
    assert AuditEvent.objects.get(action="visit.sms_reply", target=f"appointments.Visit:{beta_visit.pk}").clinic == beta.clinic

    assert "Alpha Dental: visit on" in _answer(_reply(web, "подтверждаю"))
    beta_visit.refresh_from_db()
    visit.refresh_from_db()
    assert (beta_visit.status, visit.status) == ("cancelled", "confirmed")


@pytest.mark.parametrize(("provider", "invited"), [("twilio", True), ("smsru", False), ("console", False)])
def test_only_a_provider_that_passes_replies_back_invites_one_and_only_by_sms(settings, visit, twilio, provider, invited):
    settings.SMS_PROVIDER = provider
    settings.SMSRU_API_ID = "test-api-id"
    reminders.visit_reminders_queue(now=visit.starts_at - timedelta(hours=23))
    notification = Notification.objects.get(visit=visit, kind="confirm")
    services.notification_dispatch(notification_id=notification.pk, now=visit.starts_at - timedelta(hours=23))  # on-commit not run
    sms = Delivery.objects.get(notification=notification, channel="sms")
    email = Delivery.objects.get(notification=notification, channel="email")
    assert "/v/" in sms.text and "/v/" in email.text
    assert ("Reply 1 to confirm or 2 to cancel." in sms.text) is invited
    assert "Reply 1" not in email.text
    assert Visit.objects.get(pk=visit.pk).status == "booked"
