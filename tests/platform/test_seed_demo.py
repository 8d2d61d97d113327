"""`manage.py seed_demo`: the demo `make run` loads: two clinics, every role, thirty patients; idempotent."""

from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from appointments.models import BookingRules, ScheduleException, ScheduleRule, Visit, WaitlistEntry
from audit.models import AuditEvent
from clinic_crm.management.commands.seed_demo import DEMO_PASSWORD
from clinics.models import Clinic, Doctor, Membership, Service, Specialty, Tag, WorkingHours
from clinics.tenancy import Role
from messaging.models import Message, Thread
from patients.models import ConsentDocument, ConsentRecord, Contact, Patient
from tests.conftest import CommittingClient

pytestmark = pytest.mark.django_db

STAFF_PREFIXES = {"ulybka": "moscow", "zdorovie-ekb": "ekb"}
LOGINS = ["admin", *(f"{prefix}.{role.value}" for prefix in STAFF_PREFIXES.values() for role in Role)]
COUNTED = [
    Clinic,
    Doctor,
    Patient,
    Membership,
    Contact,
    Service,
    Specialty,
    Tag,
    WorkingHours,
    ConsentDocument,
    ConsentRecord,
    AuditEvent,
    Thread,
    Message,
    Visit,
    ScheduleRule,
    ScheduleException,
    BookingRules,
    WaitlistEntry,
]


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in [get_user_model(), *COUNTED]}


@pytest.fixture
def seeded():
    return seed()


def test_second_run_creates_nothing(seeded):
    before = counts()
    seed()
    assert counts() == before


def test_the_printed_addresses_are_those_bin_serve_listens_on(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    printed = seed()
    assert "admin: http://127.0.0.1:8123/admin/" in printed and "(http://127.0.0.1:8123/login/)" in printed
    assert ":8000" not in printed


def test_two_clinics_in_different_time_zones(seeded):
    zones = dict(Clinic.objects.values_list("slug", "time_zone"))
    assert zones == {"ulybka": "Europe/Moscow", "zdorovie-ekb": "Asia/Yekaterinburg"}


def test_doctors_patients_and_contacts(seeded):
    assert Doctor.objects.count() == 6
    assert {c.slug: c.doctors.count() for c in Clinic.objects.all()} == {"ulybka": 3, "zdorovie-ekb": 3}
    assert Patient.objects.count() == 30
    # Every patient is a contact of a clinic and has consented there; every fifth knows both clinics.
    assert not Patient.objects.filter(contacts__isnull=True).exists()
    assert Contact.objects.count() == 30 + 6
    assert ConsentRecord.objects.filter(action=ConsentRecord.Action.GRANTED).count() == 36


def test_one_login_per_role_per_clinic(seeded):
    for slug, prefix in STAFF_PREFIXES.items():
        memberships = Membership.objects.filter(clinic__slug=slug, is_active=True).select_related("user")
        assert {m.role: m.user.username for m in memberships} == {role.value: f"{prefix}.{role.value}" for role in Role}
    # The doctor login answers as the clinic's first doctor.
    assert Doctor.objects.get(user__username="moscow.doctor").full_name == "Иванова Мария Сергеевна"


def test_demo_staff_have_names_and_appear_by_them_in_the_inbox(seeded):
    staff = get_user_model().objects.filter(memberships__isnull=False).distinct()
    names = {user.username: user.display_name for user in staff}
    assert len(names) == 8 and all(name != login and " " in name for login, name in names.items()), names
    assert len(set(names.values())) == 8, "two colleagues with one name"
    doctor = Doctor.objects.get(user__username="moscow.doctor")
    assert names["moscow.doctor"] == " ".join(doctor.full_name.split()[1::-1])  # «Мария Иванова» is «Иванова Мария Сергеевна»
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")
    browser.force_login(get_user_model().objects.get(username="moscow.operator"))
    answered = Message.objects.filter(sender__username="moscow.operator").values_list("thread_id", flat=True).first()
    page = browser.get(f"/admin/inbox/{answered}/").content.decode()
    assert "Дарья Никитина" in page
    assert "moscow.operator<" not in page and ">moscow.operator" not in page


def test_each_demo_login_opens_the_admin(seeded):
    for username in LOGINS:
        browser = Client(HTTP_ACCEPT_LANGUAGE="en")
        response = browser.post("/admin/login/?next=/admin/", {"username": username, "password": DEMO_PASSWORD, "next": "/admin/"})
        assert response.status_code == 302, username
        assert response["Location"] == "/admin/"
        assert browser.get("/admin/", follow=True).status_code == 200
        assert get_user_model().objects.get(pk=browser.session["_auth_user_id"]).username == username


def test_wrong_password_does_not_open_the_admin(seeded, web):
    response = web.post("/admin/login/?next=/admin/", {"username": "moscow.owner", "password": "Demo-Clinic-2025"})
    assert response.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in web.session


def test_output_lists_the_logins_and_the_password(seeded):
    assert DEMO_PASSWORD in seeded
    for username in LOGINS:
        assert f"  {username} " in seeded
    assert "+7 916 000-00-01" in seeded


def test_if_empty_leaves_a_database_with_clinics_alone(alpha):
    before = counts()
    output = seed("--if-empty")
    assert counts() == before
    assert list(Clinic.objects.values_list("slug", flat=True)) == ["alpha"]
    assert "demo data not loaded" in output


def test_if_empty_seeds_an_empty_database():
    seed("--if-empty")
    assert Clinic.objects.count() == 2
    assert Patient.objects.count() == 30


def test_every_patient_has_conversations_the_inbox_can_show(seeded):
    patients_with_threads = Thread.objects.values("patient").distinct().count()
    assert patients_with_threads == 30
    assert Thread.objects.filter(kind="doctor").exists()
    assert Thread.objects.filter(waiting_since__isnull=False).exists()  # someone is waiting for an answer
    assert Thread.objects.filter(first_response_at__isnull=False).exists()
    assert Message.objects.filter(kind="note").exists()
    for thread in Thread.objects.all():  # numbering and counters came from send_message, not from the seed
        assert thread.last_seq == thread.messages.count()


def test_every_doctor_has_a_weekly_schedule_and_services(seeded):
    for doctor in Doctor.objects.all():
        assert ScheduleRule.objects.filter(doctor=doctor).count() >= 8, doctor
        assert doctor.services.exists(), doctor
    assert BookingRules.objects.count() == 2
    assert ScheduleException.objects.filter(kind="vacation").count() == 2


def test_visits_past_with_mixed_outcomes_and_upcoming_booked_by_the_front_desk(seeded):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    past = Visit.objects.filter(starts_at__lt=now)
    assert not past.filter(starts_at__lt=now - timedelta(days=31)).exists()
    assert {"completed", "no_show", "cancelled"} <= set(past.values_list("status", flat=True))
    assert past.filter(status="cancelled", cancelled_late=True).exists() and past.filter(status="cancelled", cancelled_late=False).exists()
    upcoming = Visit.objects.filter(starts_at__gte=now)
    assert upcoming.count() >= 20 and not upcoming.filter(starts_at__gt=now + timedelta(days=15)).exists()
    assert set(upcoming.values_list("status", flat=True)) == {"booked", "confirmed"}
    assert not upcoming.filter(created_by__isnull=True).exists()  # booked through visit_book by the operator
    for clinic in Clinic.objects.all():
        assert upcoming.filter(clinic=clinic).exists() and past.filter(clinic=clinic).exists()
    assert WaitlistEntry.objects.filter(is_active=True).count() == 2


def test_no_doctor_and_no_patient_is_booked_twice_at_once(seeded):
    held = list(
        Visit.objects.exclude(status="cancelled").order_by("starts_at").values_list("doctor_id", "patient_id", "starts_at", "ends_at")
    )
    for key in (0, 1):
        last_end: dict[int, object] = {}
        for row in held:
            who, starts, ends = row[key], row[2], row[3]
            assert who not in last_end or last_end[who] <= starts, row
            last_end[who] = max(ends, last_end.get(who, ends))


def test_every_demo_person_is_unique_by_name_and_phone(seeded):
    people = list(Patient.objects.values_list("full_name", "phone"))
    assert len({name for name, _phone in people}) == len(people) == 30
    assert len({phone for _name, phone in people}) == 30
    doctors = list(Doctor.objects.values_list("full_name", flat=True))
    assert len(set(doctors)) == len(doctors)


def test_each_clinic_ships_canned_answers_in_russian(seeded):
    from messaging.models import CannedAnswer

    for clinic in Clinic.objects.all():
        answers = {a.shortcode: a for a in CannedAnswer.objects.filter(clinic=clinic, owner__isnull=True)}
        assert {"адрес", "цены", "подготовка", "документы"} <= set(answers), clinic.slug
        assert clinic.address.split(",")[0] not in answers["адрес"].text  # the address is a variable, filled per thread
        assert "{clinic_address}" in answers["адрес"].text and "₽" in answers["цены"].text
        for answer in answers.values():
            answer.full_clean()  # every variable is known
    assert CannedAnswer.objects.filter(clinic__slug="ulybka", shortcode="после-удаления").exists()


def test_readme_demo_walkthrough_works_as_written(seeded, sms):
    """README «Demo»: the first patient writes to «Улыбка», `moscow.operator` sees it in the inbox and answers."""
    readme = (settings.BASE_DIR / "README.md").read_text()
    assert "+7 916 000-00-01" in readme and "moscow.operator" in readme and "/адрес" in readme
    patient_browser = CommittingClient(HTTP_ACCEPT_LANGUAGE="ru")
    # 1–2. Sign in at /login/ with +7 916 000-00-01 and the code from the console.
    sent = patient_browser.post("/login/", {"destination": "+7 916 000-00-01"})
    assert sent.status_code == 302
    signed_in = patient_browser.post(sent["Location"], {"code": sms.last_code("+79160000001")})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/portal/"
    home = patient_browser.get("/portal/").content.decode()
    assert "Здравствуйте, Анна" in home and "Стоматология «Улыбка»" in home
    # 3. «Написать в клинику» under «Улыбка», write and send.
    opened = patient_browser.post("/portal/threads/start/", {"clinic": "ulybka", "doctor": ""})
    assert opened.status_code == 302
    thread_path = opened["Location"].split("#")[0]
    thread = Thread.objects.get(pk=int(thread_path.rstrip("/").rsplit("/", 1)[1]))
    assert (thread.clinic.slug, thread.patient.phone, thread.doctor_id) == ("ulybka", "+79160000001", None)
    question = "Здравствуйте! Как к вам добраться?"
    sent = patient_browser.post(f"{thread_path}send/", {"text": question, "client_msg_id": "readme-walkthrough"})
    assert sent.status_code == 302
    # 4. Sign in at /admin/ as moscow.operator; the conversation is in the inbox.
    staff_browser = CommittingClient(HTTP_ACCEPT_LANGUAGE="ru")
    login = staff_browser.post("/admin/login/?next=/admin/", {"username": "moscow.operator", "password": DEMO_PASSWORD, "next": "/admin/"})
    assert login.status_code == 302
    inbox = staff_browser.get("/admin/inbox/").content.decode()
    assert thread.patient.full_name in inbox and f"/admin/inbox/{thread.pk}/" in inbox
    conversation = staff_browser.get(f"/admin/inbox/{thread.pk}/").content.decode()
    assert question in conversation
    # 5. Type /адрес: the canned answer fills in for this patient; send it.
    canned = {a["shortcode"]: a["text"] for a in staff_browser.get(f"/api/threads/{thread.pk}/canned/").json()}
    answer = canned["адрес"]
    assert answer.startswith("Анна, мы находимся по адресу: Москва, ул. Тверская, 12.")
    replied = staff_browser.post(
        f"/api/threads/{thread.pk}/messages/", {"text": answer, "client_msg_id": "readme-answer"}, content_type="application/json"
    )
    assert replied.status_code == 201, replied.content
    # 6. The patient reads the answer in the conversation.
    assert "Москва, ул. Тверская, 12" in patient_browser.get(thread_path).content.decode()
