"""Clinic staff in the admin: each sees their own clinic's contacts, and the menu their role allows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests import factories as f
from tests.browser.conftest import fits_the_screen, menu_item, screenshot, staff_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def contacts(alpha, beta):
    """Two contacts in Alpha Dental, one in Beta Health, with names that cannot be mixed up."""
    tag = f.TagFactory(clinic=alpha.clinic, name="VIP")
    alina = f.ContactFactory(clinic=alpha.clinic, patient__full_name="Alina Alphova", patient__phone="+79161110001", utm_source="yandex")
    alina.tags.add(tag)
    f.ContactFactory(clinic=alpha.clinic, patient__full_name="Artem Alphov", patient__phone="+79161110002")
    f.ContactFactory(clinic=beta.clinic, patient__full_name="Boris Betov", patient__phone="+79161110003")
    return alina


def sidebar(page: Page) -> Locator:
    return page.get_by_role("navigation")


def test_operator_sees_only_her_clinics_contacts(admin_page, contacts):
    staff_login(admin_page, "olga")
    expect(sidebar(admin_page).get_by_role("link", name="Alpha Dental")).to_be_visible()
    expect(admin_page.get_by_text("Beta Health")).to_have_count(0)

    menu_item(admin_page, "Clinic contacts").click()
    expect(admin_page.get_by_role("heading", name="Clinic contacts")).to_be_visible()
    rows = admin_page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Alina Alphova")).to_be_visible()
    expect(rows.filter(has_text="Artem Alphov")).to_be_visible()
    expect(admin_page.get_by_text("Boris Betov")).to_have_count(0)
    screenshot(admin_page, "admin-1-contacts-olga", full_page=False)

    admin_page.get_by_role("link", name="Alina Alphova").click()
    expect(admin_page.get_by_text("+7 916 111-00-01").or_(admin_page.get_by_text("+79161110001")).first).to_be_visible()
    expect(admin_page.get_by_text("yandex")).to_be_visible()
    expect(admin_page.get_by_label("Notes")).to_be_editable()
    screenshot(admin_page, "admin-2-contact-olga", full_page=False)
    admin_page.get_by_label("Notes").scroll_into_view_if_needed()
    screenshot(admin_page, "admin-2b-contact-olga-bottom", full_page=False)


def test_operator_menu_has_no_staff_or_audit_log(admin_page, alpha):
    staff_login(admin_page, "olga")
    expect(sidebar(admin_page).get_by_text("Operator")).to_be_visible()
    expect(menu_item(admin_page, "Clinic contacts")).to_be_visible()
    expect(menu_item(admin_page, "Doctors")).to_be_visible()
    expect(menu_item(admin_page, "Staff")).to_have_count(0)
    expect(menu_item(admin_page, "Audit log")).to_have_count(0)
    screenshot(admin_page, "admin-3-menu-olga", full_page=False)


def test_owner_menu_has_staff_and_audit_log(admin_page, alpha):
    staff_login(admin_page, "alice")
    expect(sidebar(admin_page).get_by_role("link", name="Alpha Dental")).to_be_visible()
    expect(sidebar(admin_page).get_by_text("Owner")).to_be_visible()
    expect(menu_item(admin_page, "Staff")).to_be_visible()
    expect(menu_item(admin_page, "Audit log")).to_be_visible()
    screenshot(admin_page, "admin-4-menu-alice", full_page=False)


def test_contact_page_fits_a_laptop_screen(admin_page, contacts):
    staff_login(admin_page, "olga")
    admin_page.goto(f"/admin/patients/contact/{contacts.pk}/change/")
    expect(admin_page.get_by_label("Notes")).to_be_visible()
    fits_the_screen(admin_page)
