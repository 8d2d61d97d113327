"""A signed-in patient looks after their profile, family and consents in the portal."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, E164 = "+7 916 000-00-01", "+79160000001"  # Anna's (tests/conftest.py)
NEW_PHONE, NEW_E164 = "8 903 765-43-21", "+79037654321"


@pytest.fixture
def smile_patient(anna):
    """Anna has used the portal before: she has a name and is a patient of Smile Dental."""
    clinic = f.ClinicFactory(slug="smile", name="Smile Dental")
    document = f.ConsentDocumentFactory(clinic=clinic, version=1)
    f.ContactFactory(clinic=clinic, patient=anna)
    f.ConsentRecordFactory(patient=anna, clinic=clinic, document=document)
    return anna


def test_patient_changes_phone_from_profile(page, sms, smile_patient):
    sign_in(page, sms, phone=PHONE, e164=E164)
    page.get_by_role("link", name="Profile", exact=True).click()
    expect(page.get_by_role("heading", name="Profile", exact=True)).to_be_visible()
    expect(page.get_by_label("Full name")).to_have_value("Anna Petrova")
    expect(page.get_by_text(f"Phone: {PHONE}")).to_be_visible()
    screenshot(page, "pages-1-profile")

    page.get_by_role("link", name="Change phone or e-mail").click()
    expect(page.get_by_role("heading", name="Change phone or e-mail")).to_be_visible()
    page.get_by_label("New phone or e-mail").fill(NEW_PHONE)
    screenshot(page, "pages-2-contact-change")
    page.get_by_role("button", name="Get a code").click()

    expect(page.get_by_text(f"We sent a code to {NEW_E164}.")).to_be_visible()
    page.get_by_label("Code").fill(sms.last_code(NEW_E164))
    screenshot(page, "pages-3-contact-change-code")
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Profile", exact=True)).to_be_visible()
    expect(page.get_by_text("Your contact is changed. Your clinics and conversations stay with you.")).to_be_visible()
    expect(page.get_by_text("Phone: +7 903 765-43-21")).to_be_visible()
    screenshot(page, "pages-4-profile-changed")

    # The clinic stays with the person, not with the old number.
    page.get_by_role("link", name="My clinics", exact=True).click()
    expect(page.locator("#my-clinics").get_by_role("link", name="Smile Dental")).to_be_visible()


def test_patient_adds_a_family_member(page, sms, smile_patient):
    sign_in(page, sms, phone=PHONE, e164=E164)
    page.get_by_role("link", name="Manage family").click()
    expect(page.get_by_role("heading", name="Family", exact=True)).to_be_visible()
    expect(page.get_by_text("Nobody added yet.")).to_be_visible()

    page.get_by_label("Full name").fill("Misha Petrov")
    page.get_by_label("Who is this to you").select_option(label="Child")
    page.get_by_label("Date of birth").fill("2018-05-04")
    screenshot(page, "pages-5-family-form")
    page.get_by_role("button", name="Add", exact=True).click()

    expect(page.get_by_text("Family member added.")).to_be_visible()
    member = page.locator(".list > li").filter(has_text="Misha Petrov")
    expect(member).to_contain_text("Child")
    expect(page.get_by_text("Nobody added yet.")).to_have_count(0)
    screenshot(page, "pages-6-family-added")

    page.get_by_role("link", name="My clinics", exact=True).click()
    expect(page.get_by_text("Misha Petrov (Child)")).to_be_visible()


def test_patient_withdraws_consent_from_home(page, sms, smile_patient):
    sign_in(page, sms, phone=PHONE, e164=E164)
    clinic_card = page.locator("#my-clinics > li").filter(has_text="Smile Dental")
    screenshot(page, "pages-7-home")

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    clinic_card.get_by_role("button", name="Withdraw consent").click()

    expect(page.get_by_text("Consent withdrawn. Smile Dental will no longer process your data or write to you.")).to_be_visible()
    assert dialogs == ["The clinic will stop processing your data and writing to you. Continue?"]
    screenshot(page, "pages-8-consent-withdrawn")


def test_withdrawn_clinic_no_longer_offers_to_withdraw(page, sms, smile_patient):
    sign_in(page, sms, phone=PHONE, e164=E164)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#my-clinics").get_by_role("button", name="Withdraw consent").click()
    expect(page.get_by_text("Consent withdrawn.")).to_be_visible()
    expect(page.locator("#my-clinics").get_by_role("button", name="Withdraw consent")).to_have_count(0)
    expect(page.locator("#my-clinics").get_by_role("link", name="Give consent again")).to_be_visible()
