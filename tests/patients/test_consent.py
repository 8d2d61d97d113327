"""152-FZ consent: nothing is processed by a clinic before its text is accepted; withdrawal stops it."""

import pytest

from audit.models import AuditEvent
from patients.models import ConsentDocument, ConsentRecord, Contact
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_contact_before_consent_is_403_with_a_clear_message(api, alpha, consent_text, pavel):
    api.force_authenticate(pavel.user)
    response = api.post("/api/clinics/alpha/contact/", {}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "code": "consent_required",
        "detail": "Before writing to or booking with Alpha Dental, please accept its personal data consent.",
        "clinic": "alpha",
    }
    assert not Contact.objects.exists()


def test_accept_then_contact(api, alpha, consent_text, pavel):
    api.force_authenticate(pavel.user)
    text = api.get("/api/clinics/alpha/consent/").json()
    assert text["version"] == 1 and text["text"] == consent_text.text

    accepted = api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json", HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.1.2.3")
    assert accepted.status_code == 201
    record = ConsentRecord.objects.get()
    assert (record.action, record.document_version, record.text_sha256) == ("granted", 1, consent_text.text_sha256)
    assert (record.ip, record.user_agent, record.channel) == ("10.1.2.3", "Firefox/140", "api")

    contact = api.post("/api/clinics/alpha/contact/", {"utm_source": "yandex", "utm_campaign": "implants"}, format="json")
    assert contact.status_code == 201
    row = Contact.objects.get()
    assert (row.utm_source, row.utm_campaign, row.source_channel) == ("yandex", "implants", "web")
    # Idempotent, and the first touch is kept.
    again = api.post("/api/clinics/alpha/contact/", {"utm_source": "google"}, format="json")
    assert again.status_code == 200
    assert Contact.objects.get().utm_source == "yandex"


def test_accepting_an_outdated_version_is_409(api, alpha, consent_text, pavel):
    f.ConsentDocumentFactory(clinic=alpha.clinic, version=2)
    api.force_authenticate(pavel.user)
    response = api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    assert response.status_code == 409
    assert "version 2" in response.json()["detail"]
    assert not ConsentRecord.objects.exists()


def test_new_text_version_asks_again(api, alpha, consent_text, pavel):
    api.force_authenticate(pavel.user)
    api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    f.ConsentDocumentFactory(clinic=alpha.clinic, version=2)
    assert api.post("/api/clinics/alpha/contact/", {}, format="json").json()["code"] == "consent_required"


def test_withdrawal_stops_processing_and_keeps_the_record(api, alpha, consent_text, pavel):
    api.force_authenticate(pavel.user)
    api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    assert api.post("/api/clinics/alpha/contact/", {}, format="json").status_code == 201

    withdrawn = api.delete("/api/clinics/alpha/consent/")
    assert withdrawn.status_code == 200 and withdrawn.json()["action"] == "withdrawn"
    assert api.post("/api/clinics/alpha/contact/", {}, format="json").status_code == 403
    assert list(ConsentRecord.objects.order_by("at", "pk").values_list("action", flat=True)) == ["granted", "withdrawn"]
    assert Contact.objects.filter(patient=pavel).exists()  # history is kept
    assert AuditEvent.objects.filter(action="consent.withdrawn", patient=pavel, clinic=alpha.clinic).exists()
    # Withdrawing twice is a clear 400.
    again = api.delete("/api/clinics/alpha/consent/")
    assert again.status_code == 400 and again.json()["detail"] == "There is no consent to withdraw."


def test_consent_in_one_clinic_is_not_consent_in_another(api, alpha, beta, consent_text, pavel):
    f.ConsentDocumentFactory(clinic=beta.clinic, version=1)
    api.force_authenticate(pavel.user)
    api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    assert api.post("/api/clinics/beta/contact/", {}, format="json").status_code == 403


def test_guardian_consent_covers_a_dependant(api, alpha, consent_text, pavel):
    child = f.DependantFactory(guardian=pavel, full_name="Masha Petrova")
    api.force_authenticate(pavel.user)
    assert api.post("/api/clinics/alpha/contact/", {"person": child.pk}, format="json").status_code == 403
    api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    response = api.post("/api/clinics/alpha/contact/", {"person": child.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["person_name"] == "Masha Petrova"
    assert Contact.objects.get().patient == child


def test_someone_elses_dependant_is_404(api, alpha, consent_text, pavel):
    stranger_child = f.DependantFactory()
    api.force_authenticate(pavel.user)
    api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    response = api.post("/api/clinics/alpha/contact/", {"person": stranger_child.pk}, format="json")
    assert response.status_code == 404
    assert not Contact.objects.exists()


def test_staff_account_is_not_a_patient(api, alpha, consent_text):
    api.force_authenticate(alpha.operator)
    response = api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    assert response.status_code == 403
    assert "patient portal" in response.json()["detail"]


def test_no_consent_text_published(api, alpha, pavel):
    assert api.get("/api/clinics/alpha/consent/").status_code == 404
    api.force_authenticate(pavel.user)
    response = api.post("/api/clinics/alpha/consent/", {"version": 1}, format="json")
    assert response.status_code == 400
    assert "not published" in response.json()["detail"]


def test_consent_log_is_append_only(alpha, consent_text, pavel):
    record = f.ConsentRecordFactory(clinic=alpha.clinic, patient=pavel, document=consent_text)
    with pytest.raises(ValueError):
        record.save()
    with pytest.raises(ValueError):
        record.delete()
    with pytest.raises(ValueError):
        consent_text.text = "changed"
        consent_text.save()
    assert ConsentDocument.objects.get().text != "changed"


def test_unknown_clinic_is_404(api, pavel):
    api.force_authenticate(pavel.user)
    assert api.post("/api/clinics/nope/contact/", {}, format="json").status_code == 404


def test_the_sql_form_of_the_consent_rule_agrees_with_consent_is_given(alpha, beta, consent_text, pavel):
    """messaging.services.store checks consent inside the send statement with patients.selectors.consent_given_sql."""
    from django.db import connection

    from patients.selectors import consent_given_sql, consent_is_given
    from patients.services import consent_withdraw

    child = f.DependantFactory(guardian=pavel)

    def both(patient, clinic) -> tuple[bool, bool]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {consent_given_sql()}", {"patient": patient.pk, "clinic": clinic.pk})
            return consent_is_given(patient=patient, clinic=clinic), bool(cursor.fetchone()[0])

    states = [both(pavel, alpha.clinic), both(pavel, beta.clinic)]  # nothing yet; a clinic with no text
    f.ConsentRecordFactory(patient=pavel, clinic=alpha.clinic, document=consent_text)
    states += [both(pavel, alpha.clinic), both(child, alpha.clinic)]  # given, for the family
    f.ConsentDocumentFactory(clinic=alpha.clinic, version=2)
    states.append(both(child, alpha.clinic))  # a newer text: to be accepted again
    f.ConsentRecordFactory(patient=pavel, clinic=alpha.clinic, document=ConsentDocument.objects.get(clinic=alpha.clinic, version=2))
    states.append(both(pavel, alpha.clinic))
    consent_withdraw(patient=pavel, clinic=alpha.clinic, ip="127.0.0.1", user_agent="test")
    states.append(both(child, alpha.clinic))  # withdrawn
    assert [rule for rule, _sql in states] == [False, False, True, True, False, True, False]
    assert [sql for _rule, sql in states] == [rule for rule, _sql in states]
