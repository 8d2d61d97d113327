"""The admin as a new member of staff meets it in Russian (the default) and in English, at a desk and on a phone."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from appointments.models import Visit
from tests import factories as f
from tests.browser.conftest import DESKTOP, screenshot, staff_login
from tests.conftest import at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LOCALES = {"ru": "ru-RU", "en": "en-US"}


@pytest.fixture
def busy_day(alpha):
    """Dima's day two days ahead: three visits (30, 60 and 30 minutes) between free slots."""
    checkup = f.ServiceFactory(clinic=alpha.clinic, name="Осмотр", duration_minutes=30)
    filling = f.ServiceFactory(clinic=alpha.clinic, name="Пломба", duration_minutes=60)
    alpha.doctor.services.add(checkup, filling)
    for weekday in range(7):
        f.ScheduleRuleFactory(doctor=alpha.doctor, weekday=weekday, starts=time(9), ends=time(18))
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=2)
    for hour, minute, service, name in (
        (9, 30, checkup, "Анна Петрова"),
        (11, 0, filling, "Иван Смирнов"),
        (15, 20, checkup, "Олег Орлов"),
    ):
        patient = f.PatientFactory(full_name=name)
        f.VisitFactory(
            doctor=alpha.doctor,
            service=service,
            patient=patient,
            starts_at=at(alpha.clinic, day, hour, minute),
            status=Visit.Status.CONFIRMED,
        )
    return day


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("language", ["ru", "en"])
def test_calendar_day_and_week_show_visits_with_their_height(open_page, alpha, busy_day, language, width):
    page = open_page(locale=LOCALES[language], viewport=DESKTOP if width == "desktop" else PHONE)
    staff_login(page, "olga")
    for view, url in (
        ("day", f"/admin/calendar/?date={busy_day.isoformat()}"),
        ("week", f"/admin/calendar/week/?doctor={alpha.doctor.pk}&date={busy_day.isoformat()}"),
    ):
        page.goto(url)
        visits = page.locator(".booking-visit")
        expect(visits).to_have_count(3)
        expect(visits.filter(has_text="Иван Смирнов")).to_be_visible()
        heights = [visits.nth(i).bounding_box()["height"] for i in range(3)]
        # 1.4 px a minute, 2 px apart: 40 px for half an hour, 82 px for an hour; the column is the working day.
        assert heights == pytest.approx([40, 82, 40], abs=1), heights
        column = page.locator(".booking-col").first.bounding_box()
        assert column["height"] == pytest.approx(9 * 60 * 1.4, abs=1), column  # 09:00–18:00
        first, second = visits.nth(0).bounding_box(), visits.nth(1).bounding_box()
        assert second["y"] - first["y"] == pytest.approx(90 * 1.4, abs=1)  # 09:30 → 11:00, placed by time, not stacked
        style = visits.first.get_attribute("style")
        assert "," not in style.split("calc")[0], style
        visits.nth(1).scroll_into_view_if_needed()  # on a phone the week scrolls sideways to Sunday
        screenshot(page, f"calendar-{language}-{width}-{view}", full_page=False)


@pytest.fixture
def crowded_inbox(alpha, live_asgi):
    """21 conversations, two of them with the same «Ольга Лебедева»; the operator and the manager have names."""
    alpha.operator.first_name, alpha.operator.last_name = "Ольга", "Смирнова"
    alpha.operator.save(update_fields=["first_name", "last_name"])
    alpha.manager.first_name, alpha.manager.last_name = "Марк", "Волков"
    alpha.manager.save(update_fields=["first_name", "last_name"])
    twins = [
        f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Ольга Лебедева", patient__phone=phone)
        for phone in ("+79160010123", "+79160024567")
    ]
    for n in range(19):
        f.ThreadFactory(clinic=alpha.clinic, patient__full_name=f"Пациент {n + 1}")
    from messaging import services

    first = twins[0]
    live_asgi.call(services.send_message, thread=first, actor=first.patient.user, text="Здравствуйте! Можно записаться?")
    live_asgi.call(services.thread_assign, actor=alpha.operator, thread=first, assignee=alpha.operator)
    live_asgi.call(services.send_message, thread=first, actor=alpha.operator, text="Да, конечно.")
    return twins


@pytest.mark.parametrize("width", [1280, 1024])  # the inbox at phone width is list → conversation → card (tests/browser/test_inbox.py)
def test_russian_inbox_tabs_names_and_namesakes(open_live, alpha, crowded_inbox, width):
    page = open_live(locale="ru-RU", viewport={"width": width, "height": 800})
    staff_login(page, "olga")
    expect(page).to_have_url(re.compile(r"/admin/inbox/$"))  # an operator starts in the inbox, not the admin index

    # Every scope tab is whole: «Все 21» is not cut off.
    scopes = page.locator(".inbox-scope")
    expect(scopes.filter(has_text="Все")).to_contain_text("21")
    # Measured in one go: the list refreshes itself live and may swap the tabs between two calls.
    cut = page.locator(".inbox-scopes").evaluate(
        """nav => {
            const box = nav.getBoundingClientRect();
            return [...nav.querySelectorAll(".inbox-scope")]
                .filter(tab => { const r = tab.getBoundingClientRect();
                    return tab.scrollWidth > tab.clientWidth || r.left < box.left - 0.5 || r.right > box.right + 0.5; })
                .map(tab => tab.textContent.trim());
        }"""
    )
    assert cut == [], f"tabs cut off: {cut}"

    # The namesakes are told apart by their phone's tail.
    rows = page.locator(".inbox-row", has_text="Ольга Лебедева")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="…01-23")).to_have_count(1)
    expect(rows.filter(has_text="…45-67")).to_have_count(1)
    expect(rows.filter(has_text="…01-23")).to_contain_text("Ольга Смирнова")  # the assignee by name
    screenshot(page, f"inbox-ru-{width}-list", full_page=False)

    page.goto(f"/admin/inbox/{crowded_inbox[0].pk}/")
    expect(page.locator(".msg--staff .msg-author").first).to_have_text("Ольга Смирнова")
    assignees = page.locator("#card-assignee option")
    expect(assignees.filter(has_text="Марк Волков")).to_have_count(1)
    expect(page.locator("#card-assignee")).not_to_contain_text("mark")
    screenshot(page, f"inbox-ru-{width}-thread", full_page=False)


def test_russian_admin_lists_speak_russian(open_page, alpha):
    page = open_page(locale="ru-RU", viewport=DESKTOP)
    staff_login(page, "alice")
    expect(page).to_have_url(re.compile(r"/admin/calendar/attendance/$"))  # the owner starts at attendance
    expect(page.locator(".booking-title")).to_have_text("Посещаемость")
    expect(page.locator(".booking-pick")).to_contain_text("по")
    expect(page.locator(".booking-pick")).not_to_contain_text("кому")
    screenshot(page, "admin-ru-owner-attendance", full_page=False)

    page.goto("/admin/messaging/cannedanswer/?q=адрес")
    expect(page.get_by_text("Ничего не найдено")).to_be_visible()
    expect(page.get_by_text("Сбросить фильтры")).to_be_visible()
    expect(page.get_by_text("0 результатов")).to_be_visible()
    expect(page.locator("#searchbar")).to_have_attribute("placeholder", "Введите текст для поиска")
    for english in ("No results found", "Reset filters", "Type to search", "шаблоны ответов"):
        expect(page.get_by_text(english, exact=True)).to_have_count(0)
    screenshot(page, "admin-ru-empty-list", full_page=False)

    page.context.clear_cookies()
    page.goto("/admin/login/")
    expect(page.get_by_text("Добро пожаловать в")).to_be_visible()
    expect(page.get_by_text("Вернуться на сайт")).to_be_visible()
    screenshot(page, "admin-ru-login", full_page=False)
