"""Admin screens as staff see them: header, sidebar per role, adding staff, list query counts."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from clinics.models import Membership
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_header_shows_the_clinic_name(web, alpha):
    web.force_login(alpha.operator)
    page = web.get("/admin/", follow=True).content.decode()
    assert "Alpha Dental" in page


@pytest.mark.parametrize(
    ("role", "sees", "does_not_see"),
    [
        ("owner", ["Clinic contacts", "Staff", "Audit log", "Consent log"], ["Timed jobs"]),
        ("manager", ["Clinic contacts", "Staff", "Audit log"], ["Timed jobs"]),
        ("operator", ["Clinic contacts", "Patients", "Doctors"], ["Staff", "Audit log", "Consent log"]),
        ("doctor", ["Doctors", "Services"], ["Clinic contacts", "Staff", "Audit log"]),
    ],
)
def test_sidebar_per_role(web, alpha, role, sees, does_not_see):
    web.force_login(alpha.user(role))
    page = web.get("/admin/", follow=True).content.decode()
    for title in sees:
        assert f">{title}<" in page.replace("\n", "").replace("  ", "") or title in page, title
    for title in does_not_see:
        assert title not in page, title


@pytest.mark.parametrize(("role", "lands_on", "screen"), [
    ("operator", "/admin/inbox/", "Входящие"),
    ("doctor", "/admin/inbox/", "Входящие"),
    ("manager", "/admin/inbox/", "Входящие"),
    ("owner", "/admin/calendar/attendance/", "Посещаемость"),
])  # fmt: skip
def test_staff_land_on_their_working_screen_after_login(alpha, role, lands_on, screen):
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")
    user = alpha.user(role)
    response = browser.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": f.PASSWORD, "next": "/admin/"}, follow=True
    )
    assert response.redirect_chain[-1] == (lands_on, 302)
    page = response.content.decode()
    assert screen in page
    assert "Администрирование сайта" not in page and "Site administration" not in page


def test_the_platform_keeps_the_admin_index(superuser):
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")
    browser.force_login(superuser)
    response = browser.get("/admin/")
    assert response.status_code == 200
    assert "Администрирование сайта" in response.content.decode()


def test_the_admin_home_asks_a_stranger_to_log_in(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_owner_adds_an_operator(web, alpha):
    web.force_login(alpha.owner)
    response = web.post(
        "/admin/clinics/membership/add/",
        {"clinic": alpha.clinic.pk, "role": "operator", "username": "newbie", "password": "Long-enough-pass-1", "email": "n@example.ru"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = get_user_model().objects.get(username="newbie")
    assert user.is_staff and user.check_password("Long-enough-pass-1")
    assert Membership.objects.get(user=user).role == "operator"
    assert AuditEvent.objects.filter(action="membership.granted", actor=alpha.owner).exists()


def test_weak_password_is_shown_beside_the_field(web, alpha):
    web.force_login(alpha.owner)
    response = web.post(
        "/admin/clinics/membership/add/", {"clinic": alpha.clinic.pk, "role": "operator", "username": "newbie", "password": "123"}
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_manager_cannot_add_staff(web, alpha):
    web.force_login(alpha.manager)
    assert web.get("/admin/clinics/membership/add/").status_code == 403


def test_patient_login_cannot_be_made_staff(web, alpha, pavel):
    web.force_login(alpha.owner)
    response = web.post("/admin/clinics/membership/add/", {"clinic": alpha.clinic.pk, "role": "operator", "username": pavel.user.username})
    assert "belongs to a patient" in response.content.decode()


def test_operator_edits_a_contact_card_with_audit(web, alpha, beta):
    contact = f.ContactFactory(clinic=alpha.clinic)
    own_tag, foreign_tag = f.TagFactory(clinic=alpha.clinic, name="VIP"), f.TagFactory(clinic=beta.clinic, name="Other")
    web.force_login(alpha.operator)
    bad = web.post(f"/admin/patients/contact/{contact.pk}/change/", {"notes": "x", "tags": [foreign_tag.pk]})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    ok = web.post(
        f"/admin/patients/contact/{contact.pk}/change/",
        {"notes": "Prefers mornings", "tags": [own_tag.pk], "assigned_operator": alpha.operator.pk},
    )
    assert ok.status_code == 302
    contact.refresh_from_db()
    assert contact.notes == "Prefers mornings" and list(contact.tags.all()) == [own_tag]
    assert AuditEvent.objects.get(action="contact.updated").actor == alpha.operator


def _changelist_queries(web, path: str) -> int:
    web.get(path)  # warm the per-user caches (roles, inbox badge) as any earlier page would
    with CaptureQueriesContext(connection) as ctx:
        assert web.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_contacts_list_query_count_does_not_grow(web, alpha):
    tag = f.TagFactory(clinic=alpha.clinic)
    web.force_login(alpha.operator)
    for _ in range(3):
        f.ContactFactory(clinic=alpha.clinic).tags.add(tag)
    few = _changelist_queries(web, "/admin/patients/contact/")
    for _ in range(20):
        f.ContactFactory(clinic=alpha.clinic, assigned_operator=alpha.operator).tags.add(tag)
    many = _changelist_queries(web, "/admin/patients/contact/")
    assert many == few


def test_staff_api_contacts_query_count_does_not_grow(api, alpha):
    api.force_authenticate(alpha.operator)
    api.get("/api/staff/contacts/")  # warm the per-user role cache, as any earlier request would
    for _ in range(3):
        f.ContactFactory(clinic=alpha.clinic)
    with CaptureQueriesContext(connection) as few:
        api.get("/api/staff/contacts/")
    for _ in range(20):
        f.ContactFactory(clinic=alpha.clinic).tags.add(f.TagFactory(clinic=alpha.clinic))
    with CaptureQueriesContext(connection) as many:
        api.get("/api/staff/contacts/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_doctor_list_query_count_does_not_grow(web, alpha):
    web.force_login(alpha.manager)
    few = _changelist_queries(web, "/admin/clinics/doctor/")
    for _ in range(10):
        f.DoctorFactory(clinic=alpha.clinic).specialties.add(f.SpecialtyFactory(clinic=alpha.clinic))
    assert _changelist_queries(web, "/admin/clinics/doctor/") == few


def test_staff_password_login_is_locked_after_five_failures(client, alpha):
    for _ in range(5):
        client.post("/admin/login/?next=/admin/", {"username": "olga", "password": "wrong"})
    locked = client.post("/admin/login/?next=/admin/", {"username": "olga", "password": f.PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
