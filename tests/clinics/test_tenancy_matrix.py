"""Every role × every exposed model × own/other clinic, through the staff API and the admin.

The expectations are written out here, not derived from the models' policies,
so that a change of policy has to change this table too.
"""

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from tests import factories as f

pytestmark = pytest.mark.django_db

ALL = {"owner", "manager", "operator", "doctor"}
ADMINS = {"owner", "manager"}
FRONT = {"owner", "manager", "operator"}
ROLES = sorted(ALL)

# model label, staff API endpoint, admin path, who may view, who may change
MATRIX = [
    ("clinics.Clinic", "clinics", "clinics/clinic", ALL, ADMINS),
    ("clinics.Branch", "branches", "clinics/branch", ALL, ADMINS),
    ("clinics.WorkingHours", "working-hours", "clinics/workinghours", ALL, ADMINS),
    ("clinics.Specialty", "specialties", "clinics/specialty", ALL, ADMINS),
    ("clinics.Service", "services", "clinics/service", ALL, ADMINS),
    ("clinics.Doctor", "doctors", "clinics/doctor", ALL, ADMINS),
    ("clinics.Tag", "tags", "clinics/tag", ALL, FRONT),
    ("clinics.Membership", "memberships", "clinics/membership", ADMINS, {"owner"}),
    ("patients.Contact", "contacts", "patients/contact", FRONT, FRONT),
    ("patients.Patient", "patients", "patients/patient", FRONT, set()),
    ("patients.ContactChange", "contact-changes", "patients/contactchange", FRONT, set()),
    ("patients.ConsentDocument", "consent-documents", "patients/consentdocument", ALL, set()),
    ("patients.ConsentRecord", "consent-records", "patients/consentrecord", ADMINS, set()),
    ("audit.AuditEvent", "audit", "audit/auditevent", ADMINS, set()),
]


def make_row(label: str, world):
    clinic = world.clinic
    match label:
        case "clinics.Clinic":
            return clinic
        case "clinics.Branch":
            return f.BranchFactory(clinic=clinic)
        case "clinics.WorkingHours":
            return f.WorkingHoursFactory(clinic=clinic)
        case "clinics.Specialty":
            return f.SpecialtyFactory(clinic=clinic)
        case "clinics.Service":
            return f.ServiceFactory(clinic=clinic)
        case "clinics.Doctor":
            return world.doctor
        case "clinics.Tag":
            return f.TagFactory(clinic=clinic)
        case "clinics.Membership":
            return world.operator.memberships.get(clinic=clinic)
        case "patients.Contact":
            return f.ContactFactory(clinic=clinic)
        case "patients.Patient":
            return f.ContactFactory(clinic=clinic).patient
        case "patients.ContactChange":
            return f.ContactChangeFactory(patient=f.ContactFactory(clinic=clinic).patient)
        case "patients.ConsentDocument":
            return f.ConsentDocumentFactory(clinic=clinic)
        case "patients.ConsentRecord":
            return f.ConsentRecordFactory(clinic=clinic, patient=f.ContactFactory(clinic=clinic).patient)
        case "audit.AuditEvent":
            return AuditEvent.objects.create(clinic=clinic, action="test.row")
    raise AssertionError(label)


CASES = [(label, endpoint, admin_path, role, view, change) for label, endpoint, admin_path, view, change in MATRIX for role in ROLES]


def _ids(response) -> set[int]:
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["id"] for row in rows}


@pytest.mark.parametrize(("label", "endpoint", "admin_path", "role", "view", "change"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_staff_api_boundary(api, alpha, beta, label, endpoint, admin_path, role, view, change):
    own, other = make_row(label, alpha), make_row(label, beta)
    api.force_authenticate(alpha.user(role))

    listing = api.get(f"/api/staff/{endpoint}/")
    if role in view:
        assert listing.status_code == 200
        assert own.pk in _ids(listing)
        assert other.pk not in _ids(listing)
        assert api.get(f"/api/staff/{endpoint}/{own.pk}/").status_code == 200
    else:
        assert listing.status_code == 403
        assert "role" in listing.json()["detail"]
    # Another clinic's row does not exist for this user, whatever the role.
    assert api.get(f"/api/staff/{endpoint}/{other.pk}/").status_code in (403, 404)
    assert api.patch(f"/api/staff/{endpoint}/{other.pk}/", {}, format="json").status_code in (403, 404, 405)


@pytest.mark.parametrize(("label", "endpoint", "admin_path", "role", "view", "change"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_admin_boundary(web, alpha, beta, label, endpoint, admin_path, role, view, change):
    own, other = make_row(label, alpha), make_row(label, beta)
    web.force_login(alpha.user(role))

    changelist = web.get(f"/admin/{admin_path}/")
    own_page = web.get(f"/admin/{admin_path}/{own.pk}/change/")
    if role in view:
        assert changelist.status_code == 200
        shown = {obj.pk for obj in changelist.context["cl"].result_list}
        assert own.pk in shown and other.pk not in shown
        assert own_page.status_code == 200
        assert own_page.context["has_change_permission"] is (role in change)
    else:
        assert changelist.status_code == 403
        assert own_page.status_code in (302, 403)
    other_page = web.get(f"/admin/{admin_path}/{other.pk}/change/")
    assert other_page.status_code in (302, 403)  # 302: "doesn't exist", back to the index
    if other_page.status_code == 302:
        assert other_page["Location"] == "/admin/"


@pytest.mark.parametrize("role", ROLES)
def test_admin_cannot_post_a_row_into_another_clinic(web, alpha, beta, role):
    """Creating a service with clinic=Beta as Alpha staff: the choice is not offered, the row is not made."""
    from clinics.models import Service

    web.force_login(alpha.user(role))
    response = web.post(
        "/admin/clinics/service/add/",
        {"clinic": beta.clinic.pk, "name": "Sneaky", "duration_minutes": 30, "price_rub": 100, "is_active": "on"},
    )
    assert response.status_code in (200, 403)
    if response.status_code == 200:
        assert "Select a valid choice" in response.content.decode()
    assert not Service.objects.filter(name="Sneaky").exists()


def test_staff_api_refuses_patients_and_anonymous(api, alpha):
    contact = f.ContactFactory(clinic=alpha.clinic)
    assert api.get("/api/staff/contacts/").status_code == 403
    api.force_authenticate(contact.patient.user)
    assert api.get("/api/staff/contacts/").status_code == 403
    assert api.get(f"/api/staff/contacts/{contact.pk}/").status_code in (403, 404)


def test_superuser_sees_every_clinic(api, alpha, beta, superuser):
    api.force_authenticate(superuser)
    slugs = {row["slug"] for row in api.get("/api/staff/clinics/").json()["results"]}
    assert {"alpha", "beta"} <= slugs


def test_user_in_two_clinics_has_each_role_separately(api, alpha, beta):
    """Olga operates at Alpha and manages Beta: staff memberships are visible only in Beta."""
    f.MembershipFactory(user=alpha.operator, clinic=beta.clinic, role="manager")
    api.force_authenticate(alpha.operator)
    clinics = {row["clinic"] for row in api.get("/api/staff/memberships/").json()["results"]}
    assert clinics == {beta.clinic.pk}


def test_inactive_membership_gives_nothing(api, alpha):
    alpha.operator.memberships.update(is_active=False)
    api.force_authenticate(get_user_model().objects.get(pk=alpha.operator.pk))
    assert api.get("/api/staff/contacts/").status_code == 403


def test_staff_can_view_answers_as_visible_to_does(alpha, beta):
    """messaging.services decides the sender's side from cached roles (staff_can_view), without the query."""
    from clinics.tenancy import staff_can_view
    from messaging.models import Thread

    patient = f.PatientFactory()
    other_doctor = f.DoctorFactory(clinic=alpha.clinic, user=f.UserFactory())
    threads = [
        f.ThreadFactory(clinic=alpha.clinic, patient=patient),
        f.ThreadFactory(clinic=alpha.clinic, patient=patient, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor),
        f.ThreadFactory(clinic=alpha.clinic, patient=patient, kind=Thread.Kind.DOCTOR, doctor=other_doctor),
        f.ThreadFactory(clinic=beta.clinic, patient=patient),
    ]
    former = f.UserFactory(is_staff=True)
    f.MembershipFactory(user=former, clinic=alpha.clinic, role="operator", is_active=False)
    people = {
        "owner": alpha.owner,
        "manager": alpha.manager,
        "operator": alpha.operator,
        "doctor": alpha.doctor_user,
        "other clinic's operator": beta.operator,
        "other clinic's doctor": beta.doctor_user,
        "former operator": former,
        "superuser": f.UserFactory(is_superuser=True),
    }
    seen = {}
    for who, user in people.items():
        seen[who] = [staff_can_view(user, thread) for thread in threads]
        assert seen[who] == [Thread.objects.visible_to(user).filter(pk=t.pk).exists() for t in threads], who
    assert {who: sum(flags) for who, flags in seen.items()} == {
        "owner": 3,
        "manager": 3,
        "operator": 3,
        "doctor": 1,
        "other clinic's operator": 1,
        "other clinic's doctor": 0,
        "former operator": 0,
        "superuser": 4,
    }
