"""A patient changes phone or e-mail: the person, their clinics and history stay (ONDOC's promise)."""

import pytest

from patients.models import ContactChange, Patient
from tests import factories as f

pytestmark = pytest.mark.django_db

NEW_PHONE = "+79169990011"


def test_phone_change_keeps_contacts_and_writes_history(api, alpha, beta, pavel, sms):
    contacts = [f.ContactFactory(clinic=alpha.clinic, patient=pavel), f.ContactFactory(clinic=beta.clinic, patient=pavel)]
    api.force_authenticate(pavel.user)

    sent = api.post("/api/me/contact-change/", {"destination": "8 916 999-00-11"}, format="json")
    assert sent.status_code == 202
    confirmed = api.post("/api/me/contact-change/confirm/", {"destination": NEW_PHONE, "code": sms.last_code(NEW_PHONE)}, format="json")
    assert confirmed.status_code == 200
    assert confirmed.json()["phone"] == NEW_PHONE

    pavel.refresh_from_db()
    assert pavel.phone == NEW_PHONE
    assert {c.pk for c in pavel.contacts.all()} == {c.pk for c in contacts}
    change = ContactChange.objects.get()
    assert (change.field, change.old_value, change.new_value) == ("phone", "+79165550101", NEW_PHONE)
    # Staff of both clinics see the history row beside the contact.
    api.force_authenticate(beta.operator)
    assert [row["old_value"] for row in api.get("/api/staff/contact-changes/").json()["results"]] == ["+79165550101"]


def test_signing_in_with_the_new_phone_finds_the_same_person(api, pavel, sms):
    api.force_authenticate(pavel.user)
    api.post("/api/me/contact-change/", {"destination": NEW_PHONE}, format="json")
    api.post("/api/me/contact-change/confirm/", {"destination": NEW_PHONE, "code": sms.last_code(NEW_PHONE)}, format="json")
    api.force_authenticate(None)
    api.post("/api/auth/code/", {"destination": NEW_PHONE}, format="json")
    signed_in = api.post("/api/auth/verify/", {"destination": NEW_PHONE, "code": sms.last_code(NEW_PHONE)}, format="json")
    assert signed_in.json() == {"patient": signed_in.json()["patient"], "created": False}
    assert signed_in.json()["patient"]["id"] == pavel.pk
    assert Patient.objects.filter(guardian__isnull=True).count() == 1


def test_email_change(api, pavel):
    from django.core import mail

    api.force_authenticate(pavel.user)
    assert api.post("/api/me/contact-change/", {"destination": "pavel@example.ru"}, format="json").status_code == 202
    code = [w.rstrip(".") for w in mail.outbox[-1].body.split() if w.rstrip(".").isdigit()][0]
    assert api.post("/api/me/contact-change/confirm/", {"destination": "pavel@example.ru", "code": code}, format="json").status_code == 200
    pavel.refresh_from_db()
    assert pavel.email == "pavel@example.ru"
    assert ContactChange.objects.get().field == "email"


def test_phone_of_another_account_is_refused(api, pavel, sms):
    f.PatientFactory(phone=NEW_PHONE)
    api.force_authenticate(pavel.user)
    response = api.post("/api/me/contact-change/", {"destination": NEW_PHONE}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"destination": ["This phone or e-mail is already used by another account."]}
    assert sms.messages == []


@pytest.mark.parametrize("bad", ["8 800", "not-an-email@", "+1 555"])
def test_invalid_phone_or_email_is_a_field_error(api, pavel, sms, bad):
    api.force_authenticate(pavel.user)
    response = api.post("/api/me/contact-change/", {"destination": bad}, format="json")
    assert response.status_code == 400
    assert "destination" in response.json()["errors"]
    assert "does not look right" in response.json()["detail"]


def test_wrong_code_changes_nothing(api, pavel, sms):
    api.force_authenticate(pavel.user)
    api.post("/api/me/contact-change/", {"destination": NEW_PHONE}, format="json")
    wrong = "000000" if sms.last_code(NEW_PHONE) != "000000" else "111111"
    response = api.post("/api/me/contact-change/confirm/", {"destination": NEW_PHONE, "code": wrong}, format="json")
    assert response.status_code == 400
    pavel.refresh_from_db()
    assert pavel.phone == "+79165550101"
    assert not ContactChange.objects.exists()


def test_a_login_code_cannot_confirm_a_change(api, pavel, sms):
    """A code sent for signing in to the new number must not switch Pavel's account to it."""
    api.post("/api/auth/code/", {"destination": NEW_PHONE}, format="json")
    login_code = sms.last_code(NEW_PHONE)
    api.force_authenticate(pavel.user)
    response = api.post("/api/me/contact-change/confirm/", {"destination": NEW_PHONE, "code": login_code}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "no_code"
