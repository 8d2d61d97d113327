"""/api/reminders/: the signed-in patient's own reminders, with the portal page's rules and readable refusals."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from notifications import services
from notifications.models import Notification, PersonalReminder
from tests import factories as f

pytestmark = pytest.mark.django_db


def _at(clinic, days: int, hour: int = 10) -> datetime:
    return datetime.combine(timezone.localtime(timezone.now(), clinic.tz).date() + timedelta(days=days), time(hour), tzinfo=clinic.tz)


def _reminder(patient, clinic, text="Take the medicine", **extra) -> PersonalReminder:
    return PersonalReminder.objects.create(patient=patient, clinic=clinic, text=text, next_at=_at(clinic, 1), **extra)


@pytest.fixture
def family(alpha, anna, anna_thread):
    """Anna (consent given to Alpha) and her son Misha."""
    return anna, f.DependantFactory(guardian=anna, full_name="Misha Petrov")


def test_list_shows_the_familys_reminders_only(api, alpha, family):
    anna, misha = family
    mine = _reminder(anna, alpha.clinic)
    sons = _reminder(misha, alpha.clinic, text="Vitamin D drops", repeat="daily")
    _reminder(f.PatientFactory(), alpha.clinic, text="Someone else's pills")
    _reminder(anna, alpha.clinic, text="Old one", is_active=False)
    api.force_login(anna.user)
    body = api.get("/api/reminders/").json()
    assert [r["id"] for r in body["results"]] == [mine.pk, sons.pk]
    first = body["results"][0]
    assert set(first) == {"id", "patient", "clinic", "text", "next_at", "repeat", "repeat_until", "is_active"}
    assert first["patient"] == {"id": anna.pk, "name": "Anna Petrova"}
    assert first["clinic"] == {"id": alpha.clinic.pk, "slug": "alpha", "name": "Alpha Dental", "time_zone": "Europe/Moscow"}
    assert first["next_at"] == _at(alpha.clinic, 1).isoformat() and first["next_at"].endswith("+03:00")
    assert (first["repeat"], first["repeat_until"], first["is_active"]) == ("once", None, True)
    everything = api.get("/api/reminders/?all=1").json()["results"]
    assert [r["text"] for r in everything] == ["Take the medicine", "Vitamin D drops", "Old one"]


def test_create_for_yourself_and_for_a_dependant(api, alpha, family):
    anna, misha = family
    api.force_login(anna.user)
    when = _at(alpha.clinic, 2, 9)
    response = api.post(
        "/api/reminders/",
        {"text": "  Book a check-up  ", "clinic": alpha.clinic.pk, "next_at": when.isoformat(), "repeat": "weekly", "repeat_until": None},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["text"], body["patient"]["id"], body["repeat"], body["is_active"]) == ("Book a check-up", anna.pk, "weekly", True)
    assert PersonalReminder.objects.get(pk=body["id"]).next_at == when

    utc = when.astimezone(UTC)  # any offset is fine: it names one moment
    response = api.post(
        "/api/reminders/", {"text": "Vitamin D", "clinic": alpha.clinic.pk, "patient": misha.pk, "next_at": utc.isoformat()}, format="json"
    )
    assert response.status_code == 201 and response.json()["patient"] == {"id": misha.pk, "name": "Misha Petrov"}
    assert response.json()["next_at"] == when.isoformat()  # shown on the clinic's clock
    assert [r["text"] for r in api.get("/api/reminders/").json()["results"]] == ["Book a check-up", "Vitamin D"]


@pytest.mark.parametrize(
    "change, status, field, message",
    [
        ({"next_at": "NAIVE"}, 400, "next_at", "Give the time with its UTC offset"),
        ({"next_at": "PAST"}, 400, "next_at", "Choose a time in the future."),
        ({"next_at": "tomorrow morning"}, 400, "next_at", "Datetime has wrong format"),
        ({"text": "   "}, 400, "text", "This field may not be blank."),
        ({"text": "x" * 201}, 400, "text", "no more than 200 characters"),
        ({"repeat": "hourly"}, 400, "repeat", "is not a valid choice"),
        ({"repeat": "daily", "repeat_until": "YESTERDAY"}, 400, "repeat_until", "The last day must not be before the first reminder."),
        ({"clinic": 999999}, 400, "clinic", "No such clinic."),
        ({"patient": "STRANGER"}, 400, "patient", "This person is not in your family."),
        ({"clinic": "BETA"}, 403, None, "please accept its personal data consent"),
    ],
)
def test_refusals_are_4xx_with_a_readable_message(api, alpha, beta, family, change, status, field, message):
    anna, _misha = family
    when = _at(alpha.clinic, 1)
    replace = {
        "NAIVE": when.replace(tzinfo=None).isoformat(),
        "PAST": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "YESTERDAY": (when.date() - timedelta(days=2)).isoformat(),
        "STRANGER": f.PatientFactory().pk,
        "BETA": beta.clinic.pk,
    }
    data = {"text": "Take the medicine", "clinic": alpha.clinic.pk, "next_at": when.isoformat()}
    data.update({key: replace.get(value, value) if isinstance(value, str | int) else value for key, value in change.items()})
    api.force_login(anna.user)
    response = api.post("/api/reminders/", data, format="json")
    assert response.status_code == status, response.json()
    body = response.json()
    assert message in body["detail"]
    if field:
        assert body["code"] == "invalid" and message in " ".join(body["errors"][field])
    else:
        assert body["code"] == "consent_required" and body["clinic"] == "beta"
    assert not PersonalReminder.objects.exists()


def test_delete_cancels_the_reminder_and_its_waiting_notice(api, alpha, family):
    anna, misha = family
    reminder = _reminder(misha, alpha.clinic)
    services.personal_reminders_queue(now=reminder.next_at + timedelta(minutes=1))  # a notice is waiting to go out
    PersonalReminder.objects.filter(pk=reminder.pk).update(is_active=True, next_at=reminder.next_at)
    api.force_login(anna.user)
    assert api.delete(f"/api/reminders/{reminder.pk}/").status_code == 204
    reminder.refresh_from_db()
    assert not reminder.is_active
    assert Notification.objects.get(personal_reminder=reminder).status == "cancelled"
    assert api.get("/api/reminders/").json()["results"] == []
    assert api.delete(f"/api/reminders/{reminder.pk}/").status_code == 404  # already removed


def test_another_familys_reminder_is_not_found(api, alpha, family):
    anna, _misha = family
    theirs = _reminder(f.PatientFactory(), alpha.clinic)
    api.force_login(anna.user)
    response = api.delete(f"/api/reminders/{theirs.pk}/")
    assert response.status_code == 404 and response.json()["detail"]
    assert api.delete("/api/reminders/abc/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


def test_staff_and_strangers_are_refused(api, alpha, family):
    anna, _misha = family
    reminder = _reminder(anna, alpha.clinic)
    data = {"text": "Call Anna", "clinic": alpha.clinic.pk, "patient": anna.pk, "next_at": _at(alpha.clinic, 1).isoformat()}
    for user in (alpha.manager, alpha.owner):
        api.force_login(user)
        for response in (
            api.get("/api/reminders/"),
            api.post("/api/reminders/", data, format="json"),
            api.delete(f"/api/reminders/{reminder.pk}/"),
        ):
            assert response.status_code == 403 and response.json()["detail"] == "Sign in to the patient portal first."
    api.logout()
    assert api.get("/api/reminders/").status_code == 403
    reminder.refresh_from_db()
    assert reminder.is_active and PersonalReminder.objects.count() == 1


def test_openapi_documents_the_reminders(client):
    schema = client.get("/api/schema/?format=json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/reminders/"])
    assert "delete" in schema["paths"]["/api/reminders/{id}/"]
    created = schema["paths"]["/api/reminders/"]["post"]
    assert created["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReminderInRequest")
    assert "201" in created["responses"]
    out = schema["components"]["schemas"]["ReminderOut"]["properties"]
    assert {"id", "patient", "clinic", "text", "next_at", "repeat", "repeat_until", "is_active"} == set(out)
