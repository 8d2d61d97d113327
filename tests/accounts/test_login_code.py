"""Portal sign-in with a one-time code, through the API as the portal's JS or an app would."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import LoginCode
from patients.models import Patient

pytestmark = pytest.mark.django_db

PHONE = "+79161234567"


def request_code(api, destination=PHONE, **extra):
    return api.post("/api/auth/code/", {"destination": destination}, format="json", **extra)


def verify(api, code, destination=PHONE):
    return api.post("/api/auth/verify/", {"destination": destination, "code": code}, format="json")


def test_right_code_signs_up_and_signs_in(api, sms):
    response = request_code(api, "8 (916) 123-45-67")
    assert response.status_code == 202
    assert response.json() == {"channel": "sms", "destination": PHONE, "expires_in": 300}
    code = sms.last_code(PHONE)

    response = verify(api, code)
    assert response.status_code == 200
    assert response.json()["created"] is True
    assert response.json()["patient"]["phone"] == PHONE
    assert api.get("/api/me/").json()["phone"] == PHONE
    # The code is stored only as a hash.
    assert code not in LoginCode.objects.get().code_hash


def test_second_sign_in_finds_the_same_patient(api, sms):
    request_code(api)
    verify(api, sms.last_code(PHONE))
    api.post("/api/auth/logout/")
    request_code(api)
    response = verify(api, sms.last_code(PHONE))
    assert response.json()["created"] is False
    assert Patient.objects.count() == 1


def test_code_by_email_goes_to_the_mailbox(api):
    assert request_code(api, "Anna@Example.RU").status_code == 202
    assert mail.outbox[-1].to == ["anna@example.ru"]
    code = next(word for word in mail.outbox[-1].body.split() if word.rstrip(".").isdigit() and len(word.rstrip(".")) == 6).rstrip(".")
    assert verify(api, code, "anna@example.ru").status_code == 200


def test_wrong_code_is_refused_with_attempts_left(api, sms):
    request_code(api)
    right = sms.last_code(PHONE)
    wrong = "000000" if right != "000000" else "111111"
    response = verify(api, wrong)
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_code"
    assert response.json()["attempts_left"] == 4
    assert "Wrong code" in response.json()["detail"]
    assert api.get("/api/me/").status_code == 403


def test_expired_code_is_refused(api, sms):
    request_code(api)
    code = sms.last_code(PHONE)
    LoginCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = verify(api, code)
    assert response.status_code == 400
    assert response.json()["code"] == "expired"


def test_locked_after_five_wrong_tries_even_for_the_right_code(api, sms):
    request_code(api)
    right = sms.last_code(PHONE)
    wrong = "000000" if right != "000000" else "111111"
    statuses = [verify(api, wrong).json()["code"] for _ in range(5)]
    assert statuses == ["wrong_code"] * 4 + ["locked"]
    response = verify(api, right)
    assert response.status_code == 429
    assert response.json()["code"] == "locked"
    assert LoginCode.objects.get().attempts == 5


def test_code_is_single_use(api, sms):
    request_code(api)
    code = sms.last_code(PHONE)
    assert verify(api, code).status_code == 200
    api.post("/api/auth/logout/")
    response = verify(api, code)
    assert response.status_code == 400
    assert response.json()["code"] == "no_code"


def test_new_code_supersedes_the_old(api, sms):
    request_code(api)
    first = sms.last_code(PHONE)
    request_code(api)
    second = sms.last_code(PHONE)
    if first != second:
        assert verify(api, first).json()["code"] == "wrong_code"
    assert verify(api, second).status_code == 200


def test_rate_limit_per_phone(api, sms):
    for _ in range(3):
        assert request_code(api).status_code == 202
    response = request_code(api)
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0
    assert len(sms.messages) == 3


def test_rate_limit_per_ip(api, sms):
    for n in range(10):
        assert request_code(api, f"+7916765{n:04d}").status_code == 202
    response = request_code(api, "+79167659999")
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("12345", "phone number does not look right"),
        ("+7 999 1", "phone number does not look right"),
        ("anna@", "e-mail address does not look right"),
        ("", "This field may not be blank"),
    ],
)
def test_invalid_destination_is_a_field_error(api, sms, destination, message):
    response = request_code(api, destination)
    assert response.status_code == 400
    assert message in str(response.json()["errors"])
    assert LoginCode.objects.count() == 0
    assert sms.messages == []


def test_provider_outage_is_retried_and_does_not_fail_the_request(api, sms):
    import httpx

    answers = iter([httpx.Response(503), httpx.Response(200, json={"status": "OK", "sms": {"x": {"status": "OK", "sms_id": "1"}}})])
    sms.route.side_effect = lambda request: next(answers)
    assert request_code(api).status_code == 202
    assert len(sms.messages) == 2


def test_spent_codes_are_purged_by_the_timed_job(db):
    from accounts.tasks import purge_spent_login_codes

    old = LoginCode.objects.create(channel="sms", destination=PHONE, code_hash="x", expires_at=timezone.now())
    LoginCode.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    fresh = LoginCode.objects.create(channel="sms", destination=PHONE, code_hash="y", expires_at=timezone.now())
    assert purge_spent_login_codes.delay().get() == 1
    assert list(LoginCode.objects.values_list("pk", flat=True)) == [fresh.pk]
