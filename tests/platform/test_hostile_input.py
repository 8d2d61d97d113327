"""Input a client can send that used to answer 500: deep JSON, NUL characters, oversized bodies, Django's own refusals.

Each is refused at the edge (core.client_input through the API's JSON parser and
the NUL middleware) with a 4xx a person can read, in the API's JSON format on /api/,
and nothing is stored. NUL matters on PostgreSQL (it refuses NUL in text); on SQLite
the same requests must be refused too, so the rule does not depend on the database.
"""

from __future__ import annotations

import logging

import pytest

from accounts.models import LoginCode
from messaging.models import Message
from patients.models import ConsentRecord
from tests import factories as f

pytestmark = pytest.mark.django_db

DEEP_ARRAY = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


def post_raw(api, path: str, body: str | bytes, content_type: str = "application/json"):
    return api.generic("POST", path, body, content_type=content_type)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("path", ["/api/auth/code/", "/api/auth/verify/"])
def test_deeply_nested_json_to_sign_in_is_400_with_a_reason(api, path, body):
    response = post_raw(api, path, body)
    assert response.status_code == 400
    assert response.json() == {"code": "too_deep", "detail": "The JSON is nested more than 32 levels deep."}
    assert LoginCode.objects.count() == 0


def test_deeply_nested_json_message_is_400_and_stores_nothing(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    response = post_raw(api, f"/api/threads/{anna_thread.pk}/messages/", '{"text": ' + DEEP_ARRAY + "}")
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"
    assert Message.objects.count() == 0


def test_json_nested_a_few_levels_still_works(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    response = post_raw(api, f"/api/threads/{anna_thread.pk}/messages/", '{"text": "Hello", "attachments": []}')
    assert response.status_code == 201


def test_invalid_json_and_nan_are_400_in_the_api_format(api):
    broken = post_raw(api, "/api/auth/code/", '{"destination": ')
    assert broken.status_code == 400 and broken.json()["code"] == "bad_json"
    assert broken.json()["detail"].startswith("This is not valid JSON")
    nan = post_raw(api, "/api/auth/code/", '{"destination": NaN}')
    assert nan.status_code == 400 and nan.json()["code"] == "bad_json"


def test_nul_in_message_text_or_client_msg_id_over_the_api_is_400(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    for body in ({"text": "Hello\x00there"}, {"text": "Hello", "client_msg_id": "c-\x00"}, {"te\x00xt": "Hello"}):
        response = api.post(f"/api/threads/{anna_thread.pk}/messages/", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] == "nul_character"
        assert "NUL character" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_a_string_holding_a_backslash_u0000_is_not_a_nul(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    response = post_raw(api, f"/api/threads/{anna_thread.pk}/messages/", '{"text": "path C:\\\\u0000"}')
    assert response.status_code == 201
    assert Message.objects.get().text == "path C:\\u0000"


def test_nul_in_the_portal_message_form_is_400_and_stores_nothing(web, anna, anna_thread):
    web.force_login(anna.user)
    response = web.post(f"/portal/threads/{anna_thread.pk}/send/", {"text": "Hello\x00", "client_msg_id": "form-1"})
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    response = web.post(f"/portal/threads/{anna_thread.pk}/send/", {"text": "Hello", "client_msg_id": "form-\x00"})
    assert response.status_code == 400
    assert Message.objects.count() == 0


def test_nul_in_the_admin_search_is_400(web, alpha, anna):
    web.force_login(alpha.operator)
    assert web.get("/admin/patients/patient/", {"q": "Anna"}).status_code == 200
    response = web.get("/admin/patients/patient/", {"q": "An\x00na"})
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_nul_in_an_api_query_parameter_is_400_in_json(api, alpha):
    api.force_authenticate(alpha.operator)
    response = api.get("/api/threads/", {"q": "\x00"})
    assert response.status_code == 400
    assert response.json()["code"] == "nul_character"


def test_nul_in_a_form_to_the_api_is_400(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    response = api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "Hi\x00"}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "nul_character"
    assert Message.objects.count() == 0


def test_a_user_agent_with_nul_is_stored_without_it(web, alpha, pavel):
    """Consent rows keep the browser's user agent: a NUL in the header must not make the consent fail."""
    f.ConsentDocumentFactory(clinic=alpha.clinic, version=1)
    web.force_login(pavel.user)
    response = web.post(
        f"/portal/clinics/{alpha.clinic.slug}/consent/", {"version": 1, "agree": "on"}, HTTP_USER_AGENT="Evil\x00Browser/1.0"
    )
    assert response.status_code in (200, 302)
    record = ConsentRecord.objects.get(patient=pavel)
    assert record.user_agent == "EvilBrowser/1.0"


def test_a_13_mb_json_body_is_413_in_json_without_a_traceback(api, anna, anna_thread, caplog):
    api.force_authenticate(anna.user)
    body = '{"text": "' + "x" * (13 * 1024 * 1024) + '"}'
    with caplog.at_level(logging.INFO):
        response = post_raw(api, f"/api/threads/{anna_thread.pk}/messages/", body)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "too_large", "detail": "The request is too large: at most 1024 KB."}
    assert not [r for r in caplog.records if r.exc_info]
    assert Message.objects.count() == 0


def test_a_13_mb_form_body_to_the_api_is_413_in_json_without_a_traceback(api, anna, anna_thread, caplog):
    api.force_authenticate(anna.user)
    body = "text=" + "x" * (13 * 1024 * 1024)
    with caplog.at_level(logging.INFO):
        response = post_raw(api, f"/api/threads/{anna_thread.pk}/messages/", body, "application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not [r for r in caplog.records if r.exc_info]
    assert Message.objects.count() == 0


def test_unknown_api_address_is_404_in_json(api):
    response = api.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "There is no such address in the API."}


def test_unknown_page_outside_the_api_is_still_an_html_404(web):
    response = web.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_wrong_method_on_the_api_is_405_in_json(api):
    response = api.delete("/api/auth/code/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_bad_host_on_the_api_is_400_in_json_without_a_traceback(api, caplog):
    with caplog.at_level(logging.INFO):
        response = api.get("/api/clinics/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request", "detail": "The request could not be understood."}
    assert not [r for r in caplog.records if r.exc_info]


def test_csrf_failure_on_the_api_is_403_in_json(alpha, anna, anna_thread):
    """A signed-in browser session without the CSRF token: DRF's refusal, in the API's format."""
    from rest_framework.test import APIClient

    strict = APIClient(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    strict.force_login(anna.user)
    response = strict.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "Hello"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "CSRF" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_django_csrf_failure_is_json_on_the_api_and_html_elsewhere(anna):
    """Django's own CSRF check guards the plain views; its failure view answers by path."""
    from django.test import Client, RequestFactory

    from core.api import csrf_failure

    api_refusal = csrf_failure(RequestFactory().post("/api/anything/"), reason="CSRF cookie not set.")
    assert api_refusal.status_code == 403 and api_refusal["Content-Type"].startswith("application/json")
    strict = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    strict.force_login(anna.user)
    page = strict.post("/portal/profile/", {})
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    [
        "/api/visits/?doctor=²",
        "/api/visits/?doctor=" + "1" * 5000,
        "/api/staff/attendance/?clinic=²",
        "/api/threads/?tag=²",
        "/api/threads/?clinic=" + "9" * 5000,
        "/api/staff/thread-access/?thread=²",
        "/admin/inbox/list/?shown=²",
        "/admin/inbox/list/?current=²",
        "/admin/inbox/list/?current=" + "1" * 5000,
    ],
)
def test_ids_that_are_not_plain_digits_are_ignored_or_refused_not_a_500(api, web, alpha, path):
    """'²'.isdigit() is true and int('²') raises, as int() does on 5,000 digits: ids go through client_input.whole_number."""
    api.force_authenticate(alpha.owner)
    web.force_login(alpha.owner)
    client = api if path.startswith("/api/") else web
    assert client.get(path).status_code in (200, 403)
