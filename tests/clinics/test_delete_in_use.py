"""Deleting a doctor or a service that visits still refer to: a 409 that says why and offers deactivation,
never a 500; a deactivated one keeps its history and takes no new bookings."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from appointments.models import Visit
from audit.models import AuditEvent
from clinics.models import Doctor, Service
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def past_visit(alpha, checkup):
    return f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=timezone.now() - timedelta(days=10))


def _day(clinic, days: int):
    return timezone.localtime(timezone.now(), clinic.tz).date() + timedelta(days=days)


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [("doctors", "doctor"), ("services", "service")],
)
def test_deleting_one_with_visits_is_409_offering_deactivation(api, alpha, checkup, past_visit, endpoint, name):
    api.force_authenticate(alpha.owner)
    target = alpha.doctor if endpoint == "doctors" else checkup
    audit_before = AuditEvent.objects.count()
    response = api.delete(f"/api/staff/{endpoint}/{target.pk}/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "in_use"
    assert body["detail"] == (
        f"Cannot delete {name}: visits still refer to it. "
        "Deactivate it instead (is_active: false): its history stays and it takes no new bookings."
    )
    assert body["deactivate"] == {"is_active": False}
    assert type(target).objects.filter(pk=target.pk).exists()
    assert AuditEvent.objects.count() == audit_before  # the audit row of the refused delete was rolled back


def test_deleting_one_without_visits_still_works(api, alpha):
    api.force_authenticate(alpha.owner)
    unused = f.ServiceFactory(clinic=alpha.clinic, name="Whitening")
    assert api.delete(f"/api/staff/services/{unused.pk}/").status_code == 204
    assert not Service.objects.filter(pk=unused.pk).exists()


def test_a_deactivated_doctor_keeps_the_history_and_takes_no_new_bookings(api, alpha, checkup, past_visit):
    api.force_authenticate(alpha.owner)
    response = api.patch(f"/api/staff/doctors/{alpha.doctor.pk}/", {"is_active": False}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert Visit.objects.filter(pk=past_visit.pk, doctor=alpha.doctor).exists()

    slots = api.get("/api/clinics/alpha/slots/", {"service": checkup.pk, "date_from": _day(alpha.clinic, 3).isoformat()})
    assert slots.status_code == 200 and all(not day["slots"] for day in slots.json()["days"])
    assert alpha.doctor.pk not in [d["id"] for d in api.get("/api/clinics/alpha/").json()["doctors"]]
    patient = f.PatientFactory()
    starts_at = datetime.combine(_day(alpha.clinic, 3), time(10), tzinfo=alpha.clinic.tz)
    booked = api.post(
        "/api/visits/",
        {"doctor": alpha.doctor.pk, "service": checkup.pk, "patient": patient.pk, "starts_at": starts_at.isoformat()},
        format="json",
    )
    assert booked.status_code == 400 and booked.json()["errors"]["doctor"] == ["No such doctor."]
    assert Visit.objects.count() == 1


def test_a_deactivated_service_is_not_offered(api, alpha, checkup, past_visit):
    api.force_authenticate(alpha.owner)
    assert api.patch(f"/api/staff/services/{checkup.pk}/", {"is_active": False}, format="json").status_code == 200
    assert Service.objects.get(pk=checkup.pk).visits.count() == 1
    assert checkup.pk not in [s["id"] for s in api.get("/api/clinics/alpha/").json()["services"]]
    slots = api.get("/api/clinics/alpha/slots/", {"service": checkup.pk})
    assert slots.status_code == 400 and slots.json()["errors"]["service"] == ["This clinic has no such service."]


def test_a_patient_cannot_open_a_conversation_with_a_deactivated_doctor(api, alpha, pavel):
    f.ConsentDocumentFactory(clinic=alpha.clinic, version=1)
    Doctor.objects.filter(pk=alpha.doctor.pk).update(is_active=False)
    api.force_authenticate(pavel.user)
    response = api.post("/api/threads/", {"clinic": "alpha", "doctor": alpha.doctor.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["doctor"] == ["There is no such doctor in this clinic."]


def test_admin_delete_of_a_doctor_with_visits_explains_instead_of_failing(web, superuser, alpha, past_visit):
    web.force_login(superuser)
    page = web.get(f"/admin/clinics/doctor/{alpha.doctor.pk}/delete/")
    assert page.status_code == 200
    assert "Cannot delete doctor" in page.content.decode()
    response = web.post(f"/admin/clinics/doctor/{alpha.doctor.pk}/delete/", {"post": "yes"})
    assert response.status_code in (200, 403)
    assert Doctor.objects.filter(pk=alpha.doctor.pk).exists()
