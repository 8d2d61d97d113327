"""Canned answers: Cyrillic shortcodes, personal answers beside the clinic's, and a bare shortcode never sent."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging import services
from messaging.models import CannedAnswer, Message
from tests import factories as f
from tests.messaging.sockets import TIMEOUT, next_of, open_socket

pytestmark = pytest.mark.django_db


def add_page(web) -> str:
    return web.get(reverse("admin:messaging_cannedanswer_add")).content.decode()


def test_operator_keeps_a_personal_answer_with_a_cyrillic_shortcode(web, alpha):
    web.force_login(alpha.operator)
    page = add_page(web)
    assert f'<option value="{alpha.operator.pk}" selected>' in page  # «only for» is the operator, preset
    response = web.post(
        reverse("admin:messaging_cannedanswer_add"),
        {
            "clinic": alpha.clinic.pk,
            "owner": alpha.operator.pk,
            "shortcode": "Адрес",
            "title": "Как пройти",
            "text": "{patient_first_name}, мы на {clinic_address}.",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    answer = CannedAnswer.objects.get()
    assert (answer.shortcode, answer.owner) == ("адрес", alpha.operator)  # one spelling: lower case


def test_only_managers_write_answers_for_the_whole_clinic(web, alpha):
    web.force_login(alpha.operator)
    refused = web.post(
        reverse("admin:messaging_cannedanswer_add"),
        {"clinic": alpha.clinic.pk, "owner": "", "shortcode": "цены", "title": "Цены", "text": "Прайс на сайте."},
    )
    assert refused.status_code == 200
    assert "Only the clinic&#x27;s managers and owners write answers for everyone" in refused.content.decode()
    assert not CannedAnswer.objects.exists()
    web.force_login(alpha.manager)
    made = web.post(
        reverse("admin:messaging_cannedanswer_add"),
        {"clinic": alpha.clinic.pk, "owner": "", "shortcode": "цены", "title": "Цены", "text": "Прайс на сайте."},
    )
    assert made.status_code == 302
    assert CannedAnswer.objects.get().owner is None


def test_nobody_keeps_an_answer_for_a_colleague(web, alpha):
    web.force_login(alpha.manager)
    response = web.post(
        reverse("admin:messaging_cannedanswer_add"),
        {"clinic": alpha.clinic.pk, "owner": alpha.operator.pk, "shortcode": "x", "title": "x", "text": "x"},
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not CannedAnswer.objects.exists()


def test_personal_answers_are_seen_and_changed_by_their_author_alone(web, api, alpha, anna_thread):
    clinic_wide = f.CannedAnswerFactory(clinic=alpha.clinic, shortcode="адрес", title="Адрес клиники")
    mine = f.CannedAnswerFactory(clinic=alpha.clinic, owner=alpha.operator, shortcode="адрес", title="Мой адрес")
    theirs = f.CannedAnswerFactory(clinic=alpha.clinic, owner=alpha.doctor_user, shortcode="после", title="Доктор: после приёма")
    api.force_authenticate(alpha.operator)
    listed = api.get(f"/api/threads/{anna_thread.pk}/canned/").json()
    assert [a["title"] for a in listed] == ["Мой адрес", "Адрес клиники"]  # the same shortcode: one's own first
    web.force_login(alpha.operator)
    changelist = web.get(reverse("admin:messaging_cannedanswer_changelist")).content.decode()
    assert "Мой адрес" in changelist and "Адрес клиники" in changelist and "Доктор: после приёма" not in changelist
    assert web.get(reverse("admin:messaging_cannedanswer_change", args=[theirs.pk])).status_code == 302  # not found: back to the list
    assert 'name="text"' in web.get(reverse("admin:messaging_cannedanswer_change", args=[mine.pk])).content.decode()
    assert 'name="text"' not in web.get(reverse("admin:messaging_cannedanswer_change", args=[clinic_wide.pk])).content.decode()
    web.force_login(alpha.manager)  # managers keep the clinic's answers, not their colleagues' own
    assert "Мой адрес" not in web.get(reverse("admin:messaging_cannedanswer_changelist")).content.decode()


def test_a_shortcode_is_unique_in_the_clinic_and_per_person(web, alpha):
    f.CannedAnswerFactory(clinic=alpha.clinic, shortcode="адрес")
    f.CannedAnswerFactory(clinic=alpha.clinic, owner=alpha.operator, shortcode="адрес")
    web.force_login(alpha.operator)
    again = web.post(
        reverse("admin:messaging_cannedanswer_add"),
        {"clinic": alpha.clinic.pk, "owner": alpha.operator.pk, "shortcode": "АДРЕС", "title": "Ещё", "text": "Ещё"},
    )
    assert again.status_code == 200 and "You already have an answer with this shortcode." in again.content.decode()
    assert CannedAnswer.objects.count() == 2


@pytest.mark.parametrize("text", ["/адр", "/address", " /цены-2025 "])
def test_staff_reply_that_is_only_a_shortcode_is_refused_and_nothing_is_stored(api, alpha, anna_thread, text):
    api.force_authenticate(alpha.operator)
    response = api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": text, "client_msg_id": "c1"}, format="json")
    assert response.status_code == 400
    assert "is a canned-answer shortcode, not a reply" in response.json()["detail"]
    assert not Message.objects.filter(thread=anna_thread).exists()


def test_slashes_in_real_messages_and_patients_are_not_refused(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    for text in ("/адрес — см. выше", "Приём 12/05 в 10:00", "1/2 таблетки"):
        assert api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": text}, format="json").status_code == 201, text
    note = services.send_message(thread=anna_thread, actor=alpha.operator, text="/todo", kind=Message.Kind.NOTE)[0]
    assert note.kind == Message.Kind.NOTE  # a private note is for colleagues: any words
    patient = services.send_message(thread=anna_thread, actor=anna.user, text="/help")[0]
    assert patient.text == "/help"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_bare_shortcode_over_the_socket_gets_an_error_frame_and_the_socket_stays_open(alpha, anna_thread):
    communicator = await open_socket(alpha.operator)
    try:
        await communicator.send_json_to({"type": "message.send", "thread": anna_thread.pk, "text": "/адр", "client_msg_id": "s1"})
        error = await next_of(communicator, "error")
        assert "is a canned-answer shortcode" in error["reason"]
        await communicator.send_json_to({"type": "message.send", "thread": anna_thread.pk, "text": "Здравствуйте!", "client_msg_id": "s2"})
        stored = await next_of(communicator, "message.new", timeout=TIMEOUT)
        assert stored["text"] == "Здравствуйте!"
    finally:
        await communicator.disconnect()
