"""The portal greets a person by their given name, read from «Фамилия Имя Отчество» by one rule (Patient.given_name)."""

import pytest

from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("full_name", "given"),
    [
        ("Зайцев Сергей", "Сергей"),
        ("Петрова Анна Ивановна", "Анна"),
        ("Anna Petrova", "Anna"),
        ("Мадонна", "Мадонна"),
        ("", ""),
    ],
)
def test_given_name(full_name, given):
    assert f.PatientFactory.build(full_name=full_name).given_name == given


def test_the_portal_home_greets_by_the_given_name(web, alpha):
    patient = f.PatientFactory(full_name="Зайцев Сергей Петрович", phone="+79160002001")
    web.force_login(patient.user)
    home = web.get("/portal/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Здравствуйте, Сергей</h1>" in home and "Зайцев" not in home.split("</h1>")[0]
