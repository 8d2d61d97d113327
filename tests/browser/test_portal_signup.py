"""A new patient finds a clinic, signs up with an SMS code, accepts its consent and sees it in "My clinics"."""

from __future__ import annotations

import gettext
import re
from datetime import time
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from patients.models import ConsentRecord
from tests import factories as f
from tests.browser.conftest import enter_code, fill_profile_name, request_code, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smile():
    """A clinic with everything its public page shows, and a published consent text."""
    clinic = f.ClinicFactory(slug="smile", name="Smile Dental", phone="+74951234567", address="Москва, ул. Тверская, 12")
    for weekday in range(5):
        f.WorkingHoursFactory(clinic=clinic, weekday=weekday, opens=time(9), closes=time(20))
    f.WorkingHoursFactory(clinic=clinic, weekday=5, opens=time(10), closes=time(16))
    therapist = f.SpecialtyFactory(clinic=clinic, name="Dental therapist")
    doctor = f.DoctorFactory(clinic=clinic, full_name="Maria Ivanova", bio="Treats caries and pulpitis, 12 years of practice.")
    doctor.specialties.add(therapist)
    f.ServiceFactory(clinic=clinic, name="Dentist consultation", duration_minutes=30, price_rub=1500, specialty=therapist)
    f.ConsentDocumentFactory(clinic=clinic, version=1)
    return clinic


def test_new_patient_signs_up_from_a_clinic_page_and_joins_it(page, sms, smile):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Write to your clinic or your doctor, book without a phone call")
    expect(page.get_by_role("link", name="Smile Dental")).to_be_visible()
    screenshot(page, "signup-1-landing")

    page.get_by_role("link", name="Smile Dental").click()
    expect(page.get_by_role("heading", name="Smile Dental", level=1)).to_be_visible()
    expect(page.get_by_text("Maria Ivanova")).to_be_visible()
    expect(page.get_by_text("Dentist consultation")).to_be_visible()
    expect(page.get_by_text("30 min · 1500 RUB")).to_be_visible()
    expect(page.get_by_text("Times are in the clinic's time zone (Europe/Moscow).")).to_be_visible()
    screenshot(page, "signup-2-clinic")

    page.get_by_role("link", name="Contact this clinic").click()
    # Not signed in yet: the portal asks who we are first, and remembers where we were going.
    expect(page).to_have_url("/login/?next=/portal/clinics/smile/write/")
    page.get_by_label("Phone or e-mail").fill("+7 916 123-45-67")
    screenshot(page, "signup-3-login")
    request_code(page, "+7 916 123-45-67")

    expect(page.get_by_text("We sent a code to +79161234567. It is valid for 5 minutes.")).to_be_visible()
    page.get_by_label("Code").fill(sms.last_code("+79161234567"))
    screenshot(page, "signup-4-code")
    enter_code(page, sms, "+79161234567")

    fill_profile_name(page, "Anna Petrova")

    expect(page.get_by_role("heading", name="Согласие на обработку персональных данных")).to_be_visible()
    expect(page.locator("#consent-text")).to_contain_text("Я даю согласие Smile Dental на обработку")
    expect(page.get_by_text("Smile Dental needs your consent before the first message or booking")).to_be_visible()
    page.get_by_label("I have read the text and agree to the processing of my personal data").check()
    screenshot(page, "signup-5-consent")
    page.get_by_role("button", name="I agree").click()

    # The patient lands in the conversation they asked for, ready to write.
    expect(page.get_by_text("Thank you. Smile Dental is now in your list.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/portal/threads/\d+/"))
    expect(page.get_by_text("Ask your question: the clinic will answer here.")).to_be_visible()
    screenshot(page, "signup-6-conversation")

    page.get_by_role("navigation").get_by_role("link", name="My clinics").click()
    expect(page.get_by_role("heading", name="Hello, Anna")).to_be_visible()
    my_clinics = page.locator("#my-clinics")
    expect(my_clinics.get_by_role("link", name="Smile Dental")).to_be_visible()
    expect(my_clinics.get_by_role("button", name="Withdraw consent")).to_be_visible()
    screenshot(page, "signup-7-home")

    # Back on the clinic page the call to action is gone: we are its patient now.
    my_clinics.get_by_role("link", name="Smile Dental").click()
    expect(page.get_by_text("You are a patient of this clinic")).to_be_visible()
    expect(page.get_by_role("link", name="Contact this clinic")).to_have_count(0)

    record = ConsentRecord.objects.get()
    assert (record.action, record.clinic, record.patient.full_name) == (ConsentRecord.Action.GRANTED, smile, "Anna Petrova")


def _russian_catalog() -> gettext.GNUTranslations | None:
    for base in settings.LOCALE_PATHS:
        mo = Path(base) / "ru" / "LC_MESSAGES" / "django.mo"
        if mo.exists():
            with mo.open("rb") as fp:
                return gettext.GNUTranslations(fp)
    return None


def test_landing_speaks_russian_to_a_russian_browser(open_page, smile):
    page = open_page(locale="ru-RU")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    screenshot(page, "landing-ru")
    catalog = _russian_catalog()
    if catalog is None:
        return  # The project's Russian catalog is not compiled yet: the language is all there is to check.
    # Whatever the translators wrote, the page must show it instead of the English text.
    english = ["Sign in or sign up", "Clinics", "Write to your clinic or your doctor, book without a phone call"]
    translated = {msgid: catalog.gettext(msgid) for msgid in english if catalog.gettext(msgid) != msgid}
    assert translated, "locale/ru/LC_MESSAGES/django.mo translates none of the landing page's texts"
    for russian in translated.values():
        expect(page.get_by_text(russian, exact=True).first).to_be_visible()
