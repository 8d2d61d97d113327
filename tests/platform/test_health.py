"""/health/ for probes and people, and the API's own description (/api/schema/, /api/docs/)."""

import pytest
from django.core.management import call_command

from clinic_crm.celery import app as celery_app

pytestmark = pytest.mark.django_db

# django-health-check 4 names each check by its repr: class and arguments.
CHECKS = {
    "Database(alias='default')": "database",
    "Cache(alias='default')": "cache",
    "ChannelLayer()": "channel layer",
    "CeleryBroker()": "Celery broker",
}


@pytest.fixture
def with_broker(settings):
    """Tasks go through the broker, as with REDIS_URL in production: the broker check then connects.

    Without REDIS_URL the broker is kombu's in-memory transport, with it the real Redis.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = False


def test_health_json_lists_every_check_as_working(client):
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == dict.fromkeys(CHECKS, "OK")


def test_health_reaches_the_broker_when_tasks_are_not_run_in_process(client, with_broker):
    response = client.get("/health/?format=json")
    assert response.status_code == 200
    assert response.json()["CeleryBroker()"] == "OK"


def test_health_page_for_a_plain_probe_or_a_browser(client):
    """curl and load balancers send `Accept: */*`, browsers `text/html`: both get the status page."""
    for accept in ("*/*", "text/html,application/xhtml+xml,*/*;q=0.8"):
        response = client.get("/health/", HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        page = response.content.decode()
        assert "System status" in page
        for name in ("Database(alias=&#x27;default&#x27;)", "Cache(alias=&#x27;default&#x27;)", "ChannelLayer()", "CeleryBroker()"):
            assert name in page
        assert page.count("<p>OK</p>") == len(CHECKS)
        assert 'class="error"' not in page


def test_health_text_for_scripts(client):
    response = client.get("/health/", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200
    assert response.content.decode().splitlines() == [f"{name}: OK" for name in CHECKS]


def test_unreachable_broker_makes_health_fail_and_says_which(client, with_broker):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there
    try:
        response = client.get("/health/", HTTP_ACCEPT="application/json")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 500
    body = response.json()
    assert "Broker unreachable" in body.pop("CeleryBroker()")
    assert body == {name: "OK" for name in CHECKS if name != "CeleryBroker()"}


def test_health_needs_no_sign_in_and_is_never_cached(client):
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_openapi_schema_describes_portal_and_staff_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Clinic CRM API"
    assert {"/api/auth/code/", "/api/auth/verify/", "/api/me/", "/api/clinics/", "/api/staff/services/"} <= set(schema["paths"])
    assert "post" in schema["paths"]["/api/auth/code/"]


def test_openapi_schema_has_one_component_per_serializer(client):
    """The portal and the staff API both have a ContactOut, ConsentRecordOut…: each must keep its own shape."""
    components = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    staff_contact = components["StaffContactOut"]["properties"]
    assert {"patient", "tags", "notes", "assigned_operator"} <= set(staff_contact)
    assert "notes" not in components["ContactOut"]["properties"]


def test_openapi_schema_generates_without_warnings(tmp_path):
    """drf-spectacular's own strict mode: no unresolved fields, name collisions or invalid output."""
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3.")


def test_api_docs_page_renders_swagger_ui_for_the_schema(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<title>Clinic CRM API</title>" in page
    assert "swagger-ui" in page
    assert '"/api/schema/"' in page
