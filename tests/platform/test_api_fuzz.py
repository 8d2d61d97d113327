"""Schemathesis over the whole OpenAPI schema, in-process, as clinic staff and as a portal patient.

Every operation of the schema the app serves gets generated requests (valid and invalid by the
schema); each answer must not be a server error and must be what the schema says: a documented
status code, the documented content type, a body of the documented shape, documented headers.
Hypothesis is derandomized, so a run is the same run every time and CI does not flake.
"""

from __future__ import annotations

import zlib
from datetime import timedelta

import pytest
import schemathesis
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, TestCase
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appointments.models import BookingRules, ScheduleException, ScheduleRule, Visit, WaitlistEntry
from audit.models import AuditEvent
from clinic_crm.wsgi import application
from clinics.models import Branch, Doctor, Membership, Service, Specialty, Tag, WorkingHours
from messaging.models import CannedAnswer, Team, Thread, ThreadAccess
from notifications.models import PersonalReminder
from patients.models import ConsentDocument, ConsentRecord, Contact, ContactChange, Patient
from tests import factories as f

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Per operation and caller: ten generated requests, valid and invalid by the schema, the same ones
# on every run; no shrinking (the report shows the request as sent). Schemathesis' coverage phase
# (Hypothesis' explicit examples) is left out: it enumerates every value of every enum, 1,800
# requests for a clinic's PATCH alone (a time-zone field), far past a CI budget.
FUZZ = hypothesis_settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
SENT: dict = {"requests": 0, "operations": set(), "succeeded": set()}


@pytest.fixture
def world(alpha, beta):
    """Something real behind every path: a consented patient with a thread, a visit, a reminder, a
    relative, a waitlist entry at alpha, and one of each staff-managed thing in both clinics."""
    now = timezone.now()
    pavel = f.PatientFactory(full_name="Pavel Petrov", phone="+79165550101")
    f.DependantFactory(guardian=pavel, full_name="Petya Petrov")
    for world in (alpha, beta):
        clinic = world.clinic
        service = f.ServiceFactory(clinic=clinic, name="Check-up")
        f.ScheduleRuleFactory(doctor=world.doctor, weekday=(now + timedelta(days=2)).weekday())
        away = (now + timedelta(days=30)).date()
        f.ScheduleExceptionFactory(doctor=world.doctor, date_from=away, date_to=away + timedelta(days=1))
        f.BranchFactory(clinic=clinic)
        f.WorkingHoursFactory(clinic=clinic)
        f.SpecialtyFactory(clinic=clinic)
        f.TagFactory(clinic=clinic)
        f.CannedAnswerFactory(clinic=clinic, shortcode="address")
        BookingRules.objects.get_or_create(clinic=clinic)
        thread = f.ThreadFactory(clinic=clinic, patient=pavel)
        start = (now + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
        f.VisitFactory(doctor=world.doctor, service=service, patient=pavel, starts_at=start, thread=thread)
        f.VisitFactory(
            doctor=world.doctor, service=service, patient=pavel, starts_at=start + timedelta(hours=1),
            status=Visit.Status.CONFIRMED,
        )  # fmt: skip
        f.WaitlistEntryFactory(doctor=world.doctor, service=service, patient=pavel)
        PersonalReminder.objects.create(patient=pavel, clinic=clinic, text="Pills", next_at=now + timedelta(days=1))
    f.ContactChangeFactory(patient=pavel)
    return {"alpha": alpha, "beta": beta, "pavel": pavel}


def _signed_in_browser(user) -> dict[str, dict[str, str]]:
    """A signed-in browser's cookies and CSRF header, as the portal and the admin send them."""
    client = Client()
    client.force_login(user)
    token = "x" * 32
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value, settings.CSRF_COOKIE_NAME: token}
    return {"cookies": cookies, "headers": {"X-CSRFToken": token, "Accept-Language": "en"}}


@pytest.fixture
def in_process_requests():
    """Requests run inside the test's transaction, as Django's test client runs them: the handler's
    close_old_connections would otherwise drop the connection holding the test's data."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _real_ids(operation_path: str, world) -> dict[str, object]:
    """Ids of rows that exist, by the collection the path names, so most requests hit something."""
    clinic = world["alpha"].clinic
    pavel = world["pavel"]
    by_prefix = {
        "/api/staff/clinics/": lambda: clinic.pk,
        "/api/staff/branches/": lambda: Branch.objects.filter(clinic=clinic).first(),
        "/api/staff/working-hours/": lambda: WorkingHours.objects.filter(clinic=clinic).first(),
        "/api/staff/specialties/": lambda: Specialty.objects.filter(clinic=clinic).first(),
        "/api/staff/services/": lambda: Service.objects.filter(clinic=clinic).first(),
        "/api/staff/doctors/": lambda: Doctor.objects.filter(clinic=clinic).first(),
        "/api/staff/tags/": lambda: Tag.objects.filter(clinic=clinic).first(),
        "/api/staff/memberships/": lambda: Membership.objects.filter(clinic=clinic).first(),
        "/api/staff/contacts/": lambda: Contact.objects.filter(clinic=clinic).first(),
        "/api/staff/patients/": lambda: pavel.pk,
        "/api/staff/contact-changes/": lambda: ContactChange.objects.first(),
        "/api/staff/consent-documents/": lambda: ConsentDocument.objects.filter(clinic=clinic).first(),
        "/api/staff/consent-records/": lambda: ConsentRecord.objects.filter(clinic=clinic).first(),
        "/api/staff/audit/": lambda: AuditEvent.objects.first(),
        "/api/staff/canned-answers/": lambda: CannedAnswer.objects.filter(clinic=clinic).first(),
        "/api/staff/teams/": lambda: Team.objects.filter(clinic=clinic).first(),
        "/api/staff/thread-access/": lambda: ThreadAccess.objects.first(),
        "/api/staff/schedule-rules/": lambda: ScheduleRule.objects.filter(clinic=clinic).first(),
        "/api/staff/schedule-exceptions/": lambda: ScheduleException.objects.filter(clinic=clinic).first(),
        "/api/staff/booking-rules/": lambda: BookingRules.objects.filter(clinic=clinic).first(),
        "/api/threads/": lambda: Thread.objects.filter(clinic=clinic).first(),
        "/api/visits/": lambda: Visit.objects.filter(clinic=clinic).first(),
        "/api/waitlist/": lambda: WaitlistEntry.objects.filter(clinic=clinic).first(),
        "/api/reminders/": lambda: PersonalReminder.objects.filter(clinic=clinic).first(),
        "/api/me/family/": lambda: Patient.objects.filter(guardian=pavel).first(),
    }
    for prefix, row in by_prefix.items():
        if operation_path.startswith(prefix):
            found = row()
            return {"id": getattr(found, "pk", found)} if found is not None else {}
    return {}


@pytest.fixture(scope="module", autouse=True)
def _report_volume(request):
    """How much the fuzz did, in pytest's summary (output written during a test is captured)."""
    yield
    if not SENT["requests"]:
        return
    line = (
        f"API fuzz: {SENT['requests']} requests to {len(SENT['operations'])} operations,"
        f" {len(SENT['succeeded'])} of them answered 2xx at least once"
    )

    class Summary:
        def pytest_terminal_summary(self, terminalreporter):
            terminalreporter.write_line(line)

    request.config.pluginmanager.register(Summary(), "api-fuzz-summary")


@pytest.fixture(params=["staff", "patient"])
def signed_in(request, world, in_process_requests):
    """The caller: alpha's manager, or the portal patient who consented to alpha."""
    user = world["alpha"].manager if request.param == "staff" else world["pavel"].user
    return _signed_in_browser(user)


@schema.parametrize()
@FUZZ
def test_api_answers_what_its_schema_says(case, signed_in, world):
    # Three requests in four aim at a row that exists (the generated id would mostly be a 404);
    # the fourth keeps what Hypothesis made, for other clinics' and missing rows.
    params = case.path_parameters or {}
    seed = zlib.crc32(repr(sorted(params.items())).encode())
    if params and seed % 4:
        real = _real_ids(case.operation.path, world)
        if "slug" in params:
            real["slug"] = "alpha"
        params.update({name: value for name, value in real.items() if name in params})
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = case.call(app=application, **signed_in)
    SENT["requests"] += 1
    SENT["operations"].add(case.operation.label)
    if response.status_code < 300:
        SENT["succeeded"].add(case.operation.label)
    case.validate_response(response, checks=CHECKS, headers=signed_in["headers"])


# --- what the fuzz found, pinned -----------------------------------------------------------------


def test_an_api_path_no_route_matches_answers_json_and_a_page_keeps_the_site_404(api, web, alpha):
    api.force_login(alpha.operator)
    for path in ("/api/threads/null/", "/api/staff/teams/4.98e-232/", "/api/no-such-thing/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "not_found" and body["detail"], path
    page = web.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_deleting_a_doctor_or_service_with_visits_is_a_409_and_deletes_nothing(api, alpha, pavel):
    service = f.ServiceFactory(clinic=alpha.clinic)
    f.VisitFactory(doctor=alpha.doctor, service=service, patient=pavel, starts_at=timezone.now() + timedelta(days=1))
    api.force_login(alpha.manager)
    for path in (f"/api/staff/doctors/{alpha.doctor.pk}/", f"/api/staff/services/{service.pk}/"):
        response = api.delete(path)
        assert response.status_code == 409, path
        assert response.json()["code"] == "in_use"
    assert Doctor.objects.filter(pk=alpha.doctor.pk).exists()
    assert Service.objects.filter(pk=service.pk).exists()
