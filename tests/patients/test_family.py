import pytest

from patients.models import Patient
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_add_list_update_remove_a_dependant(api, pavel):
    api.force_authenticate(pavel.user)
    created = api.post("/api/me/family/", {"full_name": "Masha", "relation": "child", "birth_date": "2019-05-01"}, format="json")
    assert created.status_code == 201
    child_id = created.json()["id"]
    assert [p["full_name"] for p in api.get("/api/me/family/").json()] == ["Masha"]
    assert (
        api.patch(f"/api/me/family/{child_id}/", {"full_name": "Maria", "relation": "child"}, format="json").json()["full_name"] == "Maria"
    )
    assert api.delete(f"/api/me/family/{child_id}/").status_code == 204
    assert not Patient.objects.filter(pk=child_id).exists()


def test_dependant_with_clinic_history_cannot_be_removed(api, alpha, pavel):
    child = f.DependantFactory(guardian=pavel)
    f.ContactFactory(clinic=alpha.clinic, patient=child)
    api.force_authenticate(pavel.user)
    response = api.delete(f"/api/me/family/{child.pk}/")
    assert response.status_code == 400
    assert "history with a clinic" in response.json()["detail"]
    assert Patient.objects.filter(pk=child.pk).exists()


def test_other_peoples_family_is_invisible(api, pavel):
    stranger_child = f.DependantFactory()
    api.force_authenticate(pavel.user)
    assert api.patch(f"/api/me/family/{stranger_child.pk}/", {"full_name": "X", "relation": "child"}, format="json").status_code == 404
    assert api.delete(f"/api/me/family/{stranger_child.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"full_name": "", "relation": "child"}, "full_name"),
        ({"full_name": "Masha", "relation": "self"}, "relation"),
        ({"full_name": "Masha", "relation": "child", "birth_date": "2999-01-01"}, "birth_date"),
        ({"full_name": "Masha", "relation": "child", "birth_date": "01.05.2019x"}, "birth_date"),
    ],
)
def test_bad_dependant_input_is_a_field_error(api, pavel, payload, field):
    api.force_authenticate(pavel.user)
    response = api.post("/api/me/family/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Patient.objects.filter(guardian=pavel).exists()


def test_export_contains_family_clinics_and_consents(api, alpha, pavel):
    child = f.DependantFactory(guardian=pavel, full_name="Masha")
    f.ContactFactory(clinic=alpha.clinic, patient=child, utm_source="vk")
    f.ConsentRecordFactory(clinic=alpha.clinic, patient=pavel)
    api.force_authenticate(pavel.user)
    response = api.get("/api/me/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    data = response.json()
    assert data["account_holder"]["phone"] == "+79165550101"
    assert [p["full_name"] for p in data["family"]] == ["Masha"]
    assert data["clinics"][0]["clinic"] == "Alpha Dental" and data["clinics"][0]["utm"] == {"utm_source": "vk"}
    assert data["consents"][0]["action"] == "granted"


def test_profile_update(api, pavel):
    api.force_authenticate(pavel.user)
    assert api.patch("/api/me/", {"full_name": "  Pavel P.  ", "birth_date": "1990-02-03"}, format="json").json()["full_name"] == "Pavel P."
    response = api.patch("/api/me/", {"full_name": "", "birth_date": None}, format="json")
    assert response.status_code == 400 and "full_name" in response.json()["errors"]
