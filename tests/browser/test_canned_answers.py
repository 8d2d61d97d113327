"""Canned answers in the Russian inbox: «/адр» suggests the clinic's answer, Enter takes it, Enter sends it;
a shortcode that matches nothing is never sent to the patient, and the operator is told why."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging import services
from messaging.models import Message
from tests import factories as f
from tests.browser.conftest import DESKTOP, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk(open_live):
    """open(user): a staff desktop in Russian, signed in (the login form is tested in test_admin)."""
    return lambda user: open_live(locale="ru-RU", viewport=DESKTOP, user=user, language="ru")


def test_operator_answers_with_a_cyrillic_shortcode_and_an_unknown_one_sends_nothing(desk, live_asgi, alpha):
    alpha.clinic.address = "Москва, ул. Тверская, 12"
    alpha.clinic.save()
    anna = f.PatientFactory(full_name="Петрова Анна", phone="+79160004001")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    f.CannedAnswerFactory(
        clinic=alpha.clinic, shortcode="адрес", title="Адрес и как добраться",
        text="{patient_first_name}, мы находимся по адресу: {clinic_address}. Метро «Пушкинская», 5 минут пешком.",
    )  # fmt: skip
    f.CannedAnswerFactory(clinic=alpha.clinic, owner=alpha.manager, shortcode="адрес-мой", title="Чужой личный ответ")
    live_asgi.call(services.send_message, thread=thread, actor=anna.user, text="Здравствуйте! Как к вам добраться?")

    page = desk(alpha.operator)
    page.goto(f"/admin/inbox/{thread.pk}/")
    expect(page.locator("#inbox-conn")).to_have_text("На связи")
    composer = page.locator("#inbox-text")

    composer.press_sequentially("/адр", delay=30)
    suggestions = page.get_by_role("listbox", name="Шаблоны ответов")
    expect(suggestions.get_by_role("option")).to_have_count(1)  # a colleague's personal answer is not offered
    expect(suggestions.get_by_role("option").first).to_contain_text("/адрес Адрес и как добраться")
    screenshot(page, "canned-ru-1-suggestion", full_page=False)
    composer.press("Enter")
    expect(composer).to_have_value("Анна, мы находимся по адресу: Москва, ул. Тверская, 12. Метро «Пушкинская», 5 минут пешком.")
    composer.press("Enter")
    sent = page.locator(".msg.msg--staff:not(.is-pending)", has_text="мы находимся по адресу")
    expect(sent).to_be_visible()
    screenshot(page, "canned-ru-2-sent", full_page=False)
    assert Message.objects.filter(thread=thread, author="staff").count() == 1

    composer.press_sequentially("/цены", delay=30)
    expect(suggestions).to_contain_text("Подходящих шаблонов нет.")
    composer.press("Enter")
    error = page.locator("#inbox-composer-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Нет шаблона ответа с кодом /цены — ничего не отправлено.")
    expect(composer).to_have_value("/цены")  # kept, to correct
    screenshot(page, "canned-ru-3-unknown-shortcode", full_page=False)

    composer.fill("/адрес")  # an exact shortcode, its list closed with Escape: still never sent as text
    composer.press("Escape")
    page.locator("#inbox-send").click()
    expect(error).to_contain_text("ничего не отправлено")
    assert Message.objects.filter(thread=thread, author="staff").count() == 1
    assert not Message.objects.filter(text__startswith="/").exists()
    expect(page.get_by_role("link", name="Новый шаблон ответа")).to_have_attribute("href", "/admin/messaging/cannedanswer/add/")
