"""A patient finding their way on a 360 px phone, in Russian and in English: into the conversation through the
consent, offered times that close once used, the greeting by the given name, promotions and notification settings
one tap away, and visit times with their zone for a patient of two clinics in two zones."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from appointments import services as visits
from messaging.models import Thread
from promotions.models import Promotion
from promotions.services import promotion_launch
from tests import factories as f
from tests.browser.conftest import MOBILE, fits_the_screen, screenshot
from tests.conftest import at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "ru": {
        "hello": "Здравствуйте, Сергей",
        "contact": "Обратиться в клинику",
        "agree": "Даю согласие",
        "closed": "Вы записались на визит после этого предложения",
        "promotions": "Акции",
        "notifications": "Уведомления",
        "new": "Новое",
        "zone_ekb": "(Екатеринбург, UTC+5)",
        "zone_msk": "(Москва, UTC+3)",
    },
    "en": {
        "hello": "Hello, Сергей",
        "contact": "Contact this clinic",
        "agree": "I agree",
        "closed": "You booked a visit after these times were offered",
        "promotions": "Promotions",
        "notifications": "Notifications",
        "new": "New",
        "zone_ekb": "(Yekaterinburg, UTC+5)",
        "zone_msk": "(Moscow, UTC+3)",
    },
}


@pytest.fixture
def world(alpha, beta):
    """Alpha (Moscow) and Beta (Yekaterinburg); Сергей is a patient of both, Dr Dima of Alpha works 09:00–18:00."""
    checkup = f.ServiceFactory(clinic=alpha.clinic, name="Осмотр", duration_minutes=30)
    alpha.doctor.services.add(checkup)
    therapy = f.ServiceFactory(clinic=beta.clinic, name="Терапия", duration_minutes=30)
    beta.doctor.services.add(therapy)
    for weekday in range(7):
        f.ScheduleRuleFactory(doctor=alpha.doctor, weekday=weekday, starts=time(9), ends=time(18), room="101")
        f.ScheduleRuleFactory(doctor=beta.doctor, weekday=weekday, starts=time(9), ends=time(18))
    sergey = f.PatientFactory(full_name="Зайцев Сергей", phone="+79160003001")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=sergey)
    f.ThreadFactory(clinic=beta.clinic, patient=sergey)
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=3)
    return type(
        "World", (), {"alpha": alpha, "beta": beta, "checkup": checkup, "therapy": therapy, "sergey": sergey, "thread": thread, "day": day}
    )


@pytest.fixture
def patient_phone(open_live):
    """open(user, language): the patient's phone, signed in (the code flow itself is tested in test_portal_signup)."""
    return lambda user, language: open_live(locale="ru-RU" if language == "ru" else "en-US", viewport=MOBILE, user=user, language=language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_offered_times_close_live_once_a_visit_is_booked_and_stay_closed_after_a_reload(patient_phone, live_asgi, world, language):
    w = world
    offer = live_asgi.call(
        visits.slots_propose,
        actor=w.alpha.operator,
        thread=w.thread,
        slots=[(w.alpha.doctor, w.checkup, at(w.alpha.clinic, w.day, 10)), (w.alpha.doctor, w.checkup, at(w.alpha.clinic, w.day, 12))],
    )
    phone = patient_phone(w.sergey.user, language)
    phone.goto(f"/portal/threads/{w.thread.pk}/")
    phone.wait_for_function("() => window.ClinicChat !== undefined")
    box = phone.locator(f'li.msg[data-seq="{offer.seq}"] .offer-slots')
    expect(box.locator(".offer-slot")).to_have_count(2)
    expect(box.locator(".offer-slot").first).to_contain_text(WORDS[language]["zone_msk"])  # a patient of two zones
    screenshot(phone, f"wayfinding-{language}-1-offer", full_page=False)

    # The front desk books him by phone at 15:00 (not one of the offered times): the offer is used up.
    def book() -> None:
        with transaction.atomic():
            visits.visit_book(
                actor=w.alpha.operator, clinic=w.alpha.clinic, doctor=w.alpha.doctor, service=w.checkup,
                patient=w.sergey, starts_at=at(w.alpha.clinic, w.day, 15), thread=Thread.objects.get(pk=w.thread.pk),
            )  # fmt: skip

    live_asgi.call(book)
    expect(box).to_have_class("offer-slots is-closed")
    expect(box.locator(".offer-result")).to_contain_text(WORDS[language]["closed"])
    expect(box.locator('.offer-slot[aria-disabled="true"]')).to_have_count(2)
    box.locator(".offer-slot").first.click(force=True)  # a tap on a closed time books nothing
    assert w.sergey.visits.count() == 1
    fits_the_screen(phone)
    screenshot(phone, f"wayfinding-{language}-2-offer-closed-live", full_page=False)

    phone.reload()
    box = phone.locator(f'li.msg[data-seq="{offer.seq}"] .offer-slots')
    expect(box).to_have_class("offer-slots is-closed")
    expect(box.locator(".offer-result")).to_contain_text(WORDS[language]["closed"])
    expect(box.locator(".offer-slot[href]")).to_have_count(0)
    screenshot(phone, f"wayfinding-{language}-3-offer-closed-reloaded", full_page=False)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_home_greets_by_name_and_leads_to_promotions_notifications_and_zoned_visits(patient_phone, live_asgi, world, language):
    w = world
    today = timezone.localdate()

    def launch() -> None:
        promotion = Promotion.objects.create(
            clinic=w.alpha.clinic, title="Гигиена −20 %", text="Профессиональная чистка со скидкой.", valid_from=today,
            valid_until=today + timedelta(days=20),
        )  # fmt: skip
        promotion_launch(actor=w.alpha.manager, promotion=promotion)

    live_asgi.call(launch)
    late = f.PatientFactory(full_name="Зайцев Сергей Петрович", phone="+79160003002")  # joined after the launch
    f.ThreadFactory(clinic=w.alpha.clinic, patient=late)
    f.ThreadFactory(clinic=w.beta.clinic, patient=late)
    live_asgi.call(
        visits.visit_book, actor=late.user, clinic=w.beta.clinic, doctor=w.beta.doctor, service=w.therapy, patient=late,
        starts_at=at(w.beta.clinic, w.day, 13),
    )  # fmt: skip
    live_asgi.call(
        visits.visit_book, actor=late.user, clinic=w.alpha.clinic, doctor=w.alpha.doctor, service=w.checkup, patient=late,
        starts_at=at(w.alpha.clinic, w.day, 15),
    )  # fmt: skip
    phone = patient_phone(late.user, language)
    words = WORDS[language]
    phone.goto("/portal/")
    expect(phone.locator("h1")).to_have_text(words["hello"])
    nav = phone.locator(".topbar nav")
    expect(nav.get_by_role("link", name=words["promotions"], exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name=words["notifications"], exact=True)).to_be_visible()
    fits_the_screen(phone)
    screenshot(phone, f"wayfinding-{language}-4-home")

    nav.get_by_role("link", name=words["promotions"], exact=True).click()
    card = phone.locator("#promotions .promotion-card")
    expect(card).to_have_count(1)
    expect(card).to_have_class("card promotion-card has-promotion")
    expect(card).to_contain_text(words["new"])
    fits_the_screen(phone)
    screenshot(phone, f"wayfinding-{language}-5-promotions")
    card.get_by_role("link").click()
    expect(phone.get_by_role("heading", name="Гигиена −20 %")).to_be_visible()
    phone.go_back()
    phone.reload()
    expect(phone.locator("#promotions .promotion-card")).to_have_class("card promotion-card")  # read now

    phone.goto("/portal/visits/")
    upcoming = phone.locator("#upcoming-visits")
    expect(upcoming).to_contain_text("13:00 " + words["zone_ekb"])
    expect(upcoming).to_contain_text("15:00 " + words["zone_msk"])
    fits_the_screen(phone)
    screenshot(phone, f"wayfinding-{language}-6-visits-with-zones")
    moscow = late.visits.get(clinic=w.alpha.clinic)
    phone.goto(f"/portal/visits/{moscow.pk}/")
    expect(phone.locator(".facts")).to_contain_text("каб. 101" if language == "ru" else "room 101")
    screenshot(phone, f"wayfinding-{language}-7-visit")


@pytest.mark.parametrize("language", ["ru", "en"])
def test_contact_this_clinic_leads_through_the_consent_into_the_conversation(patient_phone, live_asgi, world, language):
    w = world
    f.ConsentDocumentFactory(clinic=w.alpha.clinic)
    newcomer = f.PatientFactory(full_name="Орлова Мария", phone="+79160003003")
    phone = patient_phone(newcomer.user, language)
    phone.goto("/c/alpha/")
    phone.get_by_role("link", name=WORDS[language]["contact"]).click()
    phone.get_by_role("checkbox").check()
    screenshot(phone, f"wayfinding-{language}-8-consent")
    phone.get_by_role("button", name=WORDS[language]["agree"]).click()
    phone.wait_for_function("() => window.ClinicChat !== undefined")
    thread = Thread.objects.get(patient=newcomer)
    assert f"/portal/threads/{thread.pk}/" in phone.url
    expect(phone.locator("#composer")).to_be_visible()
    fits_the_screen(phone)
    screenshot(phone, f"wayfinding-{language}-9-in-the-conversation", full_page=False)
