"""Clinic set-up through the staff API (/api/staff/): who may add services and doctors, and where."""

import pytest

from audit.models import AuditEvent
from clinics.models import Doctor, Service
from tests import factories as f

pytestmark = pytest.mark.django_db


def service_body(clinic, **overrides):
    return {"clinic": clinic.pk, "name": "Профессиональная чистка", "duration_minutes": 45, "price_rub": "3500.00", **overrides}


def listed_names(api, endpoint: str) -> set[str]:
    response = api.get(f"/api/staff/{endpoint}/")
    assert response.status_code == 200
    return {row.get("name") or row.get("full_name") for row in response.json()["results"]}


def test_manager_adds_a_service_that_is_listed_and_audited(api, alpha):
    api.force_authenticate(alpha.manager)

    response = api.post("/api/staff/services/", service_body(alpha.clinic), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["clinic"] == alpha.clinic.pk
    assert body["name"] == "Профессиональная чистка"
    assert body["duration_minutes"] == 45
    assert body["price_rub"] == "3500.00"
    assert body["is_active"] is True
    assert "Профессиональная чистка" in listed_names(api, "services")
    event = AuditEvent.objects.get(action="service.created")
    assert event.actor == alpha.manager
    assert event.clinic == alpha.clinic
    assert event.target == f"clinics.Service:{body['id']}"
    assert set(event.data["fields"]) >= {"clinic", "name", "duration_minutes", "price_rub"}


def test_added_service_is_not_seen_by_another_clinic(api, alpha, beta):
    api.force_authenticate(alpha.manager)
    api.post("/api/staff/services/", service_body(alpha.clinic), format="json")

    api.force_authenticate(beta.manager)
    assert "Профессиональная чистка" not in listed_names(api, "services")


def test_operator_may_not_add_a_service(api, alpha):
    api.force_authenticate(alpha.operator)

    response = api.post("/api/staff/services/", service_body(alpha.clinic), format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Your role in this clinic does not allow this."
    assert not Service.objects.exists()
    assert not AuditEvent.objects.exists()


def test_doctor_with_a_specialty_of_another_clinic_is_refused_naming_the_field(api, alpha, beta):
    foreign = f.SpecialtyFactory(clinic=beta.clinic, name="Ортодонт")
    api.force_authenticate(alpha.manager)

    response = api.post(
        "/api/staff/doctors/", {"clinic": alpha.clinic.pk, "full_name": "Dr Who", "specialties": [foreign.pk]}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {"specialties": ["A row of another clinic cannot be used here."]}
    assert not Doctor.objects.filter(full_name="Dr Who").exists()
    assert not AuditEvent.objects.exists()


def test_doctor_with_own_specialty_and_service_is_created(api, alpha):
    specialty = f.SpecialtyFactory(clinic=alpha.clinic, name="Терапевт")
    service = f.ServiceFactory(clinic=alpha.clinic, specialty=specialty)
    api.force_authenticate(alpha.manager)

    response = api.post(
        "/api/staff/doctors/",
        {"clinic": alpha.clinic.pk, "full_name": "Dr Who", "specialties": [specialty.pk], "services": [service.pk]},
        format="json",
    )

    assert response.status_code == 201
    doctor = Doctor.objects.get(pk=response.json()["id"])
    assert list(doctor.specialties.all()) == [specialty]
    assert list(doctor.services.all()) == [service]
    assert "Dr Who" in listed_names(api, "doctors")


def test_service_with_a_specialty_of_another_clinic_is_refused(api, alpha, beta):
    foreign = f.SpecialtyFactory(clinic=beta.clinic)
    api.force_authenticate(alpha.manager)

    response = api.post("/api/staff/services/", service_body(alpha.clinic, specialty=foreign.pk), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"specialty": ["This specialty belongs to another clinic."]}
    assert not Service.objects.exists()


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("services", lambda clinic: service_body(clinic)),
        ("doctors", lambda clinic: {"clinic": clinic.pk, "full_name": "Dr Intruder"}),
        ("specialties", lambda clinic: {"clinic": clinic.pk, "name": "Intruders"}),
        ("tags", lambda clinic: {"clinic": clinic.pk, "name": "intruder"}),
    ],
)
def test_manager_cannot_add_anything_to_another_clinic(api, alpha, beta, endpoint, body):
    api.force_authenticate(alpha.manager)
    doctors_before = Doctor.objects.count()

    response = api.post(f"/api/staff/{endpoint}/", body(beta.clinic), format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Your role in this clinic does not allow this."
    assert not beta.clinic.services.exists()
    assert not beta.clinic.specialties.exists()
    assert not beta.clinic.tags.exists()
    assert Doctor.objects.count() == doctors_before
    assert not AuditEvent.objects.exists()


def test_manager_cannot_move_own_row_into_another_clinic(api, alpha, beta):
    service = f.ServiceFactory(clinic=alpha.clinic, name="Чистка")
    api.force_authenticate(alpha.manager)

    response = api.patch(f"/api/staff/services/{service.pk}/", {"clinic": beta.clinic.pk}, format="json")

    assert response.status_code == 403
    service.refresh_from_db()
    assert service.clinic == alpha.clinic
    assert not beta.clinic.services.exists()
    assert not AuditEvent.objects.exists()


def test_negative_price_is_refused_with_a_field_message(api, alpha):
    api.force_authenticate(alpha.manager)

    response = api.post("/api/staff/services/", service_body(alpha.clinic, price_rub="-100"), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {"price_rub": ["Ensure this value is greater than or equal to 0."]}
    assert body["detail"] == "Ensure this value is greater than or equal to 0."
    assert not Service.objects.exists()


def test_too_short_service_is_refused_with_a_field_message(api, alpha):
    api.force_authenticate(alpha.manager)

    response = api.post("/api/staff/services/", service_body(alpha.clinic, duration_minutes=3), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"duration_minutes": ["Ensure this value is greater than or equal to 5."]}
    assert not Service.objects.exists()


@pytest.mark.parametrize("who", ["beta_doctor", "alpha_operator", "patient"])
def test_doctor_profile_can_only_be_linked_to_a_doctor_login_of_the_clinic(api, alpha, beta, who):
    user = {"beta_doctor": beta.doctor_user, "alpha_operator": alpha.operator, "patient": f.PatientFactory().user}[who]
    api.force_authenticate(alpha.manager)
    response = api.post("/api/staff/doctors/", {"clinic": alpha.clinic.pk, "full_name": "Dr Who", "user": user.pk}, format="json")
    assert response.status_code == 400 and "doctor role" in response.json()["errors"]["user"][0]
    assert not Doctor.objects.filter(full_name="Dr Who").exists()
    new_doctor = f.UserFactory(username="dr-new")
    f.MembershipFactory(user=new_doctor, clinic=alpha.clinic, role="doctor")
    ok = api.post("/api/staff/doctors/", {"clinic": alpha.clinic.pk, "full_name": "Dr Who", "user": new_doctor.pk}, format="json")
    assert ok.status_code == 201
