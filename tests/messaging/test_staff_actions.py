"""What staff do with a thread through the API: assign, status, tags, notes with mentions, canned answers, merge, access log."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from messaging.models import Message, Thread, ThreadAccess
from notifications.models import Notification
from patients.models import Contact
from tests import factories as f

pytestmark = pytest.mark.django_db


def patch(api, thread, **data):
    return api.patch(f"/api/threads/{thread.pk}/", data, format="json")


def test_operator_assigns_a_thread_and_the_history_says_so(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    response = patch(api, anna_thread, assigned_to=alpha.manager.pk)
    assert response.status_code == 200 and response.json()["assigned_to"]["id"] == alpha.manager.pk
    event = Message.objects.get(thread=anna_thread, kind="event")
    assert event.data["event"] == "assigned" and "olga" in event.text and "mark" in event.text
    assert AuditEvent.objects.filter(action="thread.assigned", actor=alpha.operator).exists()
    api.force_authenticate(anna.user)
    assert api.get(f"/api/threads/{anna_thread.pk}/messages/").json()["results"] == []  # staff events stay staff-only


def test_cannot_assign_to_someone_of_another_clinic(api, alpha, beta, anna_thread):
    api.force_authenticate(alpha.operator)
    response = patch(api, anna_thread, assigned_to=beta.operator.pk)
    assert response.status_code == 400 and "cannot answer" in response.json()["detail"]
    anna_thread.refresh_from_db()
    assert anna_thread.assigned_to is None and not Message.objects.exists()


def test_status_changes_and_snooze_needs_a_future_time(api, alpha, anna_thread):
    api.force_authenticate(alpha.operator)
    assert patch(api, anna_thread, status="resolved").json()["status"] == "resolved"
    past = patch(api, anna_thread, status="snoozed", snoozed_until=(timezone.now() - timedelta(hours=1)).isoformat())
    assert past.status_code == 400 and "future" in past.json()["detail"]
    later = (timezone.now() + timedelta(days=1)).isoformat()
    assert patch(api, anna_thread, status="snoozed", snoozed_until=later).json()["status"] == "snoozed"


def test_a_patient_message_reopens_a_resolved_thread(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    patch(api, anna_thread, status="resolved")
    api.force_authenticate(anna.user)
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "One more question"}, format="json")
    anna_thread.refresh_from_db()
    assert anna_thread.status == Thread.Status.OPEN


def test_tags_of_another_clinic_are_refused(api, alpha, beta, anna_thread):
    own, foreign = f.TagFactory(clinic=alpha.clinic, name="implants"), f.TagFactory(clinic=beta.clinic, name="theirs")
    api.force_authenticate(alpha.operator)
    assert patch(api, anna_thread, tags=[own.pk]).json()["tags"] == [{"id": own.pk, "name": "implants"}]
    bad = patch(api, anna_thread, tags=[own.pk, foreign.pk])
    assert bad.status_code == 400
    assert list(anna_thread.tags.all()) == [own]


def test_sensitive_thread_hides_its_preview(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    patch(api, anna_thread, sensitive=True)
    api.force_authenticate(anna.user)
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "My HIV test result"}, format="json")
    api.force_authenticate(alpha.operator)
    listed = api.get("/api/threads/").json()["results"][0]
    assert listed["last_message_preview"] == "" and listed["sensitive"] is True


def test_patients_cannot_use_staff_controls(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    assert patch(api, anna_thread, status="resolved").status_code == 403
    assert api.get(f"/api/threads/{anna_thread.pk}/canned/").status_code == 403
    anna_thread.refresh_from_db()
    assert anna_thread.status == Thread.Status.OPEN


def test_note_mentions_notify_the_colleague(api, alpha, anna_thread):
    api.force_authenticate(alpha.operator)
    response = api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "@mark can you call her back?", "note": True}, format="json")
    assert response.status_code == 201 and response.json()["mentions"] == [alpha.manager.pk]
    assert Notification.objects.get(kind="mention").recipient == alpha.manager


def test_canned_answers_are_filled_for_the_thread(api, alpha, anna_thread):
    alpha.clinic.address = "Москва, ул. Тверская, 12"
    alpha.clinic.save()
    f.CannedAnswerFactory(clinic=alpha.clinic, shortcode="addr", text="{patient_name}, we are at {clinic_address}. {clinic_url}")
    api.force_authenticate(alpha.operator)
    answers = api.get(f"/api/threads/{anna_thread.pk}/canned/").json()
    assert answers == [
        {"shortcode": "addr", "title": "Address", "text": "Anna Petrova, we are at Москва, ул. Тверская, 12. http://testserver/c/alpha/"}
    ]


def test_canned_answer_with_an_unknown_variable_is_refused(api, alpha):
    api.force_authenticate(alpha.manager)
    response = api.post(
        "/api/staff/canned-answers/", {"clinic": alpha.clinic.pk, "shortcode": "hi", "title": "Hi", "text": "Hello {name}"}, format="json"
    )
    assert response.status_code == 400 and "Unknown variable" in response.json()["detail"]
    api.force_authenticate(alpha.operator)
    ok = {"clinic": alpha.clinic.pk, "shortcode": "hi", "title": "Hi", "text": "Hello {patient_name}"}
    assert api.post("/api/staff/canned-answers/", ok, format="json").status_code == 403  # operators use them, managers write them


def test_merging_two_cards_of_one_person_moves_the_threads(api, alpha, anna, anna_thread):
    second = f.PatientFactory(full_name="Анна Петрова", phone="+79160000099", email="anna.work@example.ru")
    other_thread = f.ThreadFactory(clinic=alpha.clinic, patient=second)
    keep = anna_thread.contact
    keep.tags.add(f.TagFactory(clinic=alpha.clinic, name="vip"))
    merge = other_thread.contact
    merge.notes = "Called from her work phone"
    merge.save()
    api.force_authenticate(alpha.operator)
    response = api.post(f"/api/staff/contacts/{keep.pk}/merge/", {"other": merge.pk}, format="json")
    assert response.status_code == 200, response.json()
    assert set(Thread.objects.filter(contact=keep).values_list("pk", flat=True)) == {anna_thread.pk, other_thread.pk}
    keep.refresh_from_db()
    assert "work phone" in keep.notes
    assert Contact.objects.get(pk=merge.pk).merged_into == keep
    # Each person still sees only their own conversation.
    api.force_authenticate(second.user)
    assert [t["id"] for t in api.get("/api/threads/").json()["results"]] == [other_thread.pk]


def test_cards_of_different_clinics_cannot_be_merged(api, alpha, beta, anna_thread, boris_thread):
    api.force_authenticate(alpha.owner)
    response = api.post(f"/api/staff/contacts/{anna_thread.contact.pk}/merge/", {"other": boris_thread.contact.pk}, format="json")
    assert response.status_code in (400, 404)
    assert Contact.objects.filter(merged_into__isnull=False).count() == 0


def test_every_staff_read_is_in_the_access_log_for_the_owner_only(api, alpha, anna_thread):
    api.force_authenticate(alpha.operator)
    api.get(f"/api/threads/{anna_thread.pk}/")
    api.get(f"/api/threads/{anna_thread.pk}/messages/")
    assert ThreadAccess.objects.filter(thread=anna_thread, user=alpha.operator).count() == 2
    assert api.get("/api/staff/thread-access/").status_code == 403
    api.force_authenticate(alpha.owner)
    rows = api.get(f"/api/staff/thread-access/?thread={anna_thread.pk}").json()["results"]
    assert {r["user_name"] for r in rows} == {"olga"}


def test_inbox_api_query_count_does_not_grow_with_threads(api, alpha):
    api.force_authenticate(alpha.operator)
    tag = f.TagFactory(clinic=alpha.clinic)
    for _ in range(3):
        f.ThreadFactory(clinic=alpha.clinic, assigned_to=alpha.operator).tags.add(tag)
    api.get("/api/threads/")
    with CaptureQueriesContext(connection) as few:
        assert api.get("/api/threads/").status_code == 200
    for _ in range(25):
        f.ThreadFactory(clinic=alpha.clinic, assigned_to=alpha.manager).tags.add(tag)
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/api/threads/").json()["results"]) == 28
    assert len(many.captured_queries) == len(few.captured_queries)


def test_messages_page_upward_by_seq(api, alpha, anna, anna_thread):
    from messaging.services import send_message

    for i in range(1, 8):
        send_message(thread=anna_thread, actor=alpha.operator, text=f"m{i}")
        cache.clear()
    api.force_authenticate(anna.user)
    newest = api.get(f"/api/threads/{anna_thread.pk}/messages/?limit=3").json()
    assert [m["text"] for m in newest["results"]] == ["m5", "m6", "m7"] and newest["has_more"]
    older = api.get(f"/api/threads/{anna_thread.pk}/messages/?limit=3&before=5").json()
    assert [m["text"] for m in older["results"]] == ["m2", "m3", "m4"] and older["has_more"]
    oldest = api.get(f"/api/threads/{anna_thread.pk}/messages/?limit=3&before=2").json()
    assert [m["text"] for m in oldest["results"]] == ["m1"] and not oldest["has_more"]
    after = api.get(f"/api/threads/{anna_thread.pk}/messages/?after=5").json()
    assert [m["seq"] for m in after["results"]] == [6, 7]
    assert api.get(f"/api/threads/{anna_thread.pk}/messages/?before=abc").status_code == 400


def test_patient_reading_updates_unread_and_receipts(api, alpha, anna, anna_thread):
    from messaging.services import send_message

    send_message(thread=anna_thread, actor=alpha.operator, text="Your tests are ready")
    send_message(thread=anna_thread, actor=alpha.operator, text="Come any time", kind="text")
    api.force_authenticate(anna.user)
    assert api.get("/api/threads/").json()["results"][0]["unread"] == 2
    body = api.post(f"/api/threads/{anna_thread.pk}/read/", {"seq": 1}, format="json").json()
    assert body["unread"] == 1 and body["patient_read_seq"] == 1
    assert api.post(f"/api/threads/{anna_thread.pk}/read/", {}, format="json").json()["unread"] == 0
    api.force_authenticate(alpha.operator)
    assert api.get(f"/api/threads/{anna_thread.pk}/").json()["patient_read_seq"] == 2


@pytest.mark.parametrize(
    ("full_name", "first"),
    [("Петрова Анна Ивановна", "Анна"), ("Петрова Анна", "Анна"), ("Anna Petrova", "Anna"), ("Анна", "Анна")],
)
def test_canned_answers_greet_by_first_name(api, alpha, full_name, first):
    thread = f.ThreadFactory(clinic=alpha.clinic, patient__full_name=full_name)
    f.CannedAnswerFactory(clinic=alpha.clinic, shortcode="hi", text="{patient_first_name}, здравствуйте!")
    api.force_authenticate(alpha.operator)
    assert api.get(f"/api/threads/{thread.pk}/canned/").json()[0]["text"] == f"{first}, здравствуйте!"


def test_staff_see_the_patients_name_on_their_messages(api, alpha, anna, anna_thread):
    api.force_authenticate(anna.user)
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "Hello"}, format="json")
    api.force_authenticate(alpha.operator)
    assert api.get(f"/api/threads/{anna_thread.pk}/messages/").json()["results"][0]["author_name"] == "Anna Petrova"
