"""Who is who on the staff screens: colleagues by their names, patients of one name told apart."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client, TestCase

from messaging import services
from messaging.models import Message
from tests import factories as f

pytestmark = pytest.mark.django_db


def _named(user, first: str, last: str):
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])
    return user


def _russian(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(user)
    return client


@pytest.fixture
def named_staff(alpha):
    return _named(alpha.operator, "Ольга", "Смирнова"), _named(alpha.manager, "Марк", "Волков")


def test_colleagues_appear_by_name_in_the_conversation_the_assignee_list_the_notes_and_the_logs(alpha, anna_thread, named_staff):
    olga, mark = named_staff
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.send_message(thread=anna_thread, actor=olga, text="Добрый день!")
        services.send_message(thread=anna_thread, actor=olga, kind=Message.Kind.NOTE, text="@mark перезвоните ей, пожалуйста")
        services.thread_assign(actor=olga, thread=anna_thread, assignee=olga)
    owner = _russian(alpha.owner)

    page = _russian(olga).get(f"/admin/inbox/{anna_thread.pk}/").content.decode()
    authors = re.findall(r'<span class="msg-author">([^<]*)</span>', page)
    assert authors and set(authors) == {"Ольга Смирнова"}, authors
    options = dict(re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', page.split('id="card-assignee"')[1].split("</select>")[0]))
    assert options[str(mark.pk)] == "Марк Волков" and options[str(olga.pk)] == "Ольга Смирнова"
    assert "Марк Волков <code>@mark</code>" in page  # the name, and the handle a mention is typed with
    assert "назначил(а) ответственного: Ольга Смирнова" in page

    threads = owner.get("/admin/messaging/thread/").content.decode()
    assert "Ольга Смирнова" in threads and ">olga<" not in threads
    audit = owner.get("/admin/audit/auditevent/").content.decode()
    assert "Ольга Смирнова" in audit and ">olga<" not in audit
    accesses = owner.get("/admin/messaging/threadaccess/").content.decode()
    assert "Ольга Смирнова" in accesses and "Входящие" in accesses
    assert not re.search(r"<td[^>]*>\s*inbox\s*</td>", accesses), "the screen's code instead of its name"


def test_a_login_is_shown_only_for_a_colleague_without_a_name(alpha, anna_thread):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.send_message(thread=anna_thread, actor=alpha.operator, text="Добрый день!")
    page = _russian(alpha.owner).get(f"/admin/inbox/{anna_thread.pk}/").content.decode()
    assert re.findall(r'<span class="msg-author">([^<]*)</span>', page) == ["olga"]


def test_patients_of_one_name_are_told_apart_by_the_phones_tail_or_the_birth_year(alpha):
    first = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Ольга Лебедева", patient__phone="+79160010123")
    second = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Ольга Лебедева", patient__phone="+79160024567")
    child = f.DependantFactory(guardian=first.patient, full_name="Ольга Лебедева", birth_date=date(2015, 6, 1))
    third = f.ThreadFactory(clinic=alpha.clinic, patient=child)
    unnamed = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="", patient__phone="+79160037788")

    page = _russian(alpha.operator).get("/admin/inbox/?q=Лебедева").content.decode()
    rows = dict(re.findall(r'data-thread="(\d+)".*?<span class="inbox-row-name">(.*?)</span> <time', page))
    hints = {int(pk): re.sub(r"<[^>]+>", "", name) for pk, name in rows.items()}
    assert hints == {
        first.pk: "Ольга Лебедева …01-23",
        second.pk: "Ольга Лебедева …45-67",
        third.pk: "Ольга Лебедева 2015 г. р.",
    }
    everyone = _russian(alpha.operator).get("/admin/inbox/").content.decode()
    assert "+7 916 003-77-88" in everyone and "…77-88" not in everyone  # a phone shown as the name needs no tail
    assert unnamed.patient.hint == "" and first.patient.hint == "…01-23"
