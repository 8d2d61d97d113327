"""The portal's HTML pages, driven like a browser without JavaScript would."""

import pytest

from patients.models import ConsentRecord, Contact
from tests import factories as f

pytestmark = pytest.mark.django_db

PHONE = "+79161234567"


def sign_in(web, sms, phone=PHONE, next_url=""):
    response = web.post("/login/", {"destination": phone, "next": next_url})
    assert response.status_code == 302, response.content.decode()[:500]
    response = web.post(response["Location"], {"code": sms.last_code(phone), "next": next_url})
    assert response.status_code == 302
    return response


def test_landing_lists_clinics(web, alpha, beta):
    page = web.get("/").content.decode()
    assert "Alpha Dental" in page and "Beta Health" in page


def test_sign_up_name_consent_home(web, alpha, consent_text, sms):
    clinic_page = web.get("/c/alpha/?utm_source=yandex&utm_campaign=spring", HTTP_REFERER="https://ya.ru/search")
    assert "Contact this clinic" in clinic_page.content.decode()

    after_code = sign_in(web, sms, next_url="/portal/clinics/alpha/consent/")
    # A new patient is asked for a name first, then sent on to where they were going.
    assert after_code["Location"].startswith("/portal/profile/")
    profile = web.post(after_code["Location"], {"full_name": "Anna Ivanova", "next": "/portal/clinics/alpha/consent/"})
    assert profile["Location"] == "/portal/clinics/alpha/consent/"

    consent_page = web.get("/portal/clinics/alpha/consent/").content.decode()
    assert consent_text.text in consent_page
    missing_tick = web.post("/portal/clinics/alpha/consent/", {"version": 1})
    assert missing_tick.status_code == 200 and "This field is required" in missing_tick.content.decode()
    assert not ConsentRecord.objects.exists()

    agreed = web.post("/portal/clinics/alpha/consent/", {"version": 1, "agree": "on"}, HTTP_USER_AGENT="Mobile Safari")
    assert agreed["Location"] == "/portal/"
    home = web.get("/portal/").content.decode()
    assert "Alpha Dental is now in your list" in home
    assert "Alpha Dental" in home.split('id="my-clinics"')[1]
    contact = Contact.objects.get()
    assert (contact.utm_source, contact.utm_campaign, contact.referrer) == ("yandex", "spring", "https://ya.ru/search")
    assert ConsentRecord.objects.get().user_agent == "Mobile Safari"


def test_wrong_code_shows_the_reason(web, sms):
    web.post("/login/", {"destination": PHONE})
    wrong = "000000" if sms.last_code(PHONE) != "000000" else "111111"
    page = web.post("/login/code/", {"code": wrong}).content.decode()
    assert "Wrong code. Attempts left: 4." in page


def test_invalid_phone_shows_a_field_error(web, sms):
    page = web.post("/login/", {"destination": "12-34"}).content.decode()
    assert "This phone number does not look right" in page
    assert sms.messages == []


def test_portal_pages_need_sign_in(web, alpha):
    response = web.get("/portal/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/portal/"


def test_staff_visiting_the_portal_go_to_the_admin(web, alpha):
    web.force_login(alpha.operator)
    assert web.get("/portal/")["Location"] == "/admin/"


def test_open_redirect_is_refused(web, sms):
    response = sign_in(web, sms, next_url="https://evil.example/")
    assert "evil" not in response["Location"]


def test_withdraw_from_home(web, alpha, consent_text, pavel):
    f.ConsentRecordFactory(clinic=alpha.clinic, patient=pavel, document=consent_text)
    f.ContactFactory(clinic=alpha.clinic, patient=pavel)
    web.force_login(pavel.user)
    response = web.post("/portal/clinics/alpha/consent/withdraw/", follow=True)
    assert "Consent withdrawn" in response.content.decode()
    assert ConsentRecord.objects.latest("at", "pk").action == "withdrawn"


def test_family_page_adds_a_member(web, pavel):
    web.force_login(pavel.user)
    response = web.post("/portal/family/", {"full_name": "Masha", "relation": "child"}, follow=True)
    assert "Family member added" in response.content.decode()
    assert "Masha" in response.content.decode()


def test_export_download(web, pavel):
    web.force_login(pavel.user)
    response = web.get("/portal/export/")
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert response.json()["account_holder"]["full_name"] == "Pavel Petrov"


def test_clinic_times_are_shown_in_the_clinic_zone(web, beta):
    f.WorkingHoursFactory(clinic=beta.clinic, weekday=0)
    page = web.get("/c/beta/").content.decode()
    assert "Asia/Yekaterinburg" in page and "09:00–18:00" in page
