"""The portal chat pages as a browser without JavaScript sees them: home, start, thread, plain-form sending."""

from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from messaging import services
from messaging.models import Attachment, Message, Thread
from patients.models import ConsentRecord
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    """A fresh throttle window, and uploaded files in a temporary folder instead of private/."""
    cache.clear()
    storage = FileSystemStorage(location=str(tmp_path / "private"))
    for name in ("file", "thumbnail"):
        monkeypatch.setattr(Attachment._meta.get_field(name), "storage", storage)


@pytest.fixture
def portal(web, anna):
    web.force_login(anna.user)
    return web


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def staff_says(world, thread, text, **extra):
    return services.send_message(thread=thread, actor=world.operator, text=text, **extra)[0]


def thread_url(thread) -> str:
    return f"/portal/threads/{thread.pk}/"


def png(name="tooth.png", size=(64, 48)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


# --- home --------------------------------------------------------------------------------


def test_home_shows_unread_badges_and_the_doctors_to_write_to(portal, alpha, anna, anna_thread):
    staff_says(alpha, anna_thread, "Your crown is ready")
    staff_says(alpha, anna_thread, "Come any day after 10")
    f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Nobody")  # no CRM account: cannot answer
    f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Retired", user=f.UserFactory(), is_active=False)
    doctor_thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    services.send_message(thread=doctor_thread, actor=alpha.doctor_user, text="How is the tooth?")
    child = f.DependantFactory(guardian=anna, full_name="Misha Petrov")
    child_thread = f.ThreadFactory(clinic=alpha.clinic, patient=child)
    staff_says(alpha, child_thread, "Misha's check-up is on Friday")

    page = page_of(portal.get("/portal/"))
    card = page.split('id="my-clinics"')[1]
    clinic_row = re.search(r'data-chat="clinic">(.*?)</li>', card, re.S).group(1)
    assert "Chat with the clinic" in clinic_row and "2 unread messages" in clinic_row
    assert "Come any day after 10" in clinic_row
    assert "Write to the clinic" in clinic_row
    doctor_row = re.search(rf'data-chat="doctor-{alpha.doctor.pk}">(.*?)</li>', card, re.S).group(1)
    assert "Dr Dima" in doctor_row and "1 unread message" in doctor_row and "Write to the doctor" in doctor_row
    assert "Dr Nobody" not in page and "Dr Retired" not in page
    # The child's conversation is there too, labelled for whom it is.
    family_row = card.split('class="chats family-chats"')[1]
    assert f'href="{thread_url(child_thread)}#latest"' in family_row
    assert "for Misha Petrov" in family_row and "1 unread message" in family_row
    # Whom to write for: me or the child.
    assert f'<option value="{child.pk}">Misha Petrov</option>' in card


def test_home_without_unread_messages_shows_no_badge(portal, alpha, anna, anna_thread):
    services.send_message(thread=anna_thread, actor=anna.user, text="Hello")
    page = page_of(portal.get("/portal/"))
    assert "Write to the clinic" in page and 'class="unread"' not in page


# --- starting a conversation -------------------------------------------------------------


def test_write_to_the_clinic_opens_the_thread_and_comes_back_to_it(portal, alpha, anna):
    f.ConsentRecordFactory(patient=anna, clinic=alpha.clinic)
    response = portal.post("/portal/threads/start/", {"clinic": "alpha", "doctor": ""})
    thread = Thread.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{thread_url(thread)}#latest"
    assert (thread.patient, thread.kind, thread.doctor) == (anna, Thread.Kind.CLINIC, None)
    page = page_of(portal.get(thread_url(thread)))
    assert "<h1>Alpha Dental</h1>" in page and "Ask your question: the clinic will answer here." in page

    again = portal.post("/portal/threads/start/", {"clinic": "alpha", "doctor": "", "patient": anna.pk})
    assert again["Location"] == f"{thread_url(thread)}#latest" and Thread.objects.count() == 1


def test_write_to_the_doctor_for_a_child(portal, alpha, anna):
    f.ConsentRecordFactory(patient=anna, clinic=alpha.clinic)
    child = f.DependantFactory(guardian=anna, full_name="Misha Petrov")
    response = portal.post("/portal/threads/start/", {"clinic": "alpha", "doctor": alpha.doctor.pk, "patient": child.pk})
    thread = Thread.objects.get()
    assert response["Location"] == f"{thread_url(thread)}#latest"
    assert (thread.patient, thread.doctor) == (child, alpha.doctor)
    page = page_of(portal.get(thread_url(thread)))
    assert "<h1>Dr Dima</h1>" in page and "Alpha Dental · for Misha Petrov" in page


def test_cannot_start_for_a_stranger_or_with_a_doctor_who_does_not_answer(portal, alpha, anna):
    f.ConsentRecordFactory(patient=anna, clinic=alpha.clinic)
    stranger = f.DependantFactory(full_name="Somebody Else")
    silent = f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Nobody")
    refused = portal.post("/portal/threads/start/", {"clinic": "alpha", "patient": stranger.pk}, follow=True)
    assert "This person is not in your family." in page_of(refused)
    refused = portal.post("/portal/threads/start/", {"clinic": "alpha", "doctor": silent.pk}, follow=True)
    assert "This doctor does not answer questions in this clinic." in page_of(refused)
    assert portal.post("/portal/threads/start/", {"clinic": "nowhere"}).status_code == 404
    assert not Thread.objects.exists()


def test_starting_without_consent_goes_to_the_consent_page_and_then_into_the_conversation(portal, alpha, anna):
    document = f.ConsentDocumentFactory(clinic=alpha.clinic)
    response = portal.post("/portal/threads/start/", {"clinic": "alpha", "doctor": alpha.doctor.pk})
    write = f"/portal/clinics/alpha/write/?doctor={alpha.doctor.pk}"
    assert response.status_code == 302 and response["Location"] == "/portal/clinics/alpha/consent/?" + urlencode({"next": write})
    page = page_of(portal.get(response["Location"]))
    assert "Before writing to or booking with Alpha Dental, please accept its personal data consent." in page
    assert not Thread.objects.exists()
    agreed = portal.post(response["Location"], {"version": document.version, "agree": "on", "next": write}, follow=True)
    thread = Thread.objects.get()
    assert (thread.patient, thread.doctor) == (anna, alpha.doctor)
    assert agreed.redirect_chain[-1][0] == f"{thread_url(thread)}#latest"
    assert "Thank you. Alpha Dental is now in your list." in page_of(agreed)


def test_contact_this_clinic_leads_through_the_consent_into_the_clinic_conversation(portal, alpha, anna):
    document = f.ConsentDocumentFactory(clinic=alpha.clinic)
    page = page_of(portal.get("/c/alpha/"))
    assert 'href="/portal/clinics/alpha/write/"' in page
    to_consent = portal.get("/portal/clinics/alpha/write/")
    assert to_consent["Location"] == "/portal/clinics/alpha/consent/?next=%2Fportal%2Fclinics%2Falpha%2Fwrite%2F"
    consent_page = page_of(portal.get(to_consent["Location"]))
    assert 'name="next" value="/portal/clinics/alpha/write/"' in consent_page
    agreed = portal.post(to_consent["Location"], {"version": document.version, "agree": "on", "next": "/portal/clinics/alpha/write/"})
    assert agreed["Location"] == "/portal/clinics/alpha/write/"
    landed = portal.get(agreed["Location"])
    thread = Thread.objects.get(patient=anna, clinic=alpha.clinic, doctor=None)
    assert landed["Location"] == f"{thread_url(thread)}#latest"


def test_consent_never_sends_the_patient_to_another_site(portal, alpha, anna):
    document = f.ConsentDocumentFactory(clinic=alpha.clinic)
    for target in ("https://evil.example.com/", "//evil.example.com/", "javascript:alert(1)"):
        agreed = portal.post(
            f"/portal/clinics/alpha/consent/?{urlencode({'next': target})}", {"version": document.version, "agree": "on", "next": target}
        )
        assert agreed.status_code == 302 and agreed["Location"] == "/portal/", target


# --- the thread page ---------------------------------------------------------------------


def test_thread_page_shows_the_history_but_never_private_notes(portal, alpha, anna, anna_thread):
    services.send_message(thread=anna_thread, actor=anna.user, text="Can I come on Monday?")
    services.send_message(thread=anna_thread, actor=alpha.operator, text="Patient owes 3000 RUB", kind=Message.Kind.NOTE)
    staff_says(alpha, anna_thread, "Yes, at 10:00. Directions: https://alpha.example.ru/map")
    page = page_of(portal.get(thread_url(anna_thread)))
    assert "Can I come on Monday?" in page
    assert "Yes, at 10:00." in page
    assert "owes 3000" not in page
    # Own message on the right with its tick, the clinic's on the left; times in the clinic's zone.
    mine = re.search(r'<li class="msg mine" data-seq="1".*?</li>', page, re.S).group(0)
    assert 'class="ticks read"' in mine  # the clinic answered after it: read
    theirs = re.search(r'<li class="msg theirs" data-seq="3".*?</li>', page, re.S).group(0)
    assert '<a target="_blank" href="https://alpha.example.ru/map" rel="nofollow">https://alpha.example.ru/map</a>' in theirs
    created = Message.objects.get(seq=3).created_at.astimezone(alpha.clinic.tz)
    assert f">{created:%H:%M}</time>" in theirs


def test_ticks_follow_the_clinics_delivery_and_read_markers(portal, alpha, anna, anna_thread):
    for text in ("one", "two", "three"):
        services.send_message(thread=anna_thread, actor=anna.user, text=text)
    Thread.objects.filter(pk=anna_thread.pk).update(staff_delivered_seq=2, staff_read_seq=1)
    page = page_of(portal.get(thread_url(anna_thread)))
    states = re.findall(r'data-seq="(\d)".*?class="ticks (\w+)"', page, re.S)
    assert states == [("1", "read"), ("2", "delivered"), ("3", "sent")]


def test_html_in_a_message_is_shown_as_text(portal, alpha, anna, anna_thread):
    staff_says(alpha, anna_thread, '<img src=x onerror="alert(1)"> <b>bold</b>')
    page = page_of(portal.get(thread_url(anna_thread)))
    assert "<img src=x" not in page and "<b>bold</b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &lt;b&gt;bold&lt;/b&gt;" in page


def test_earlier_messages_are_a_link_away(portal, alpha, anna, anna_thread):
    for i in range(1, 56):
        services.send_message(thread=anna_thread, actor=anna.user, text=f"message number {i}")
        cache.clear()  # not a throttle test
    page = page_of(portal.get(thread_url(anna_thread)))
    assert "message number 6<" in page and "message number 5<" not in page
    assert '<a id="chat-earlier" class="chat-earlier" href="?before=6">Show earlier messages</a>' in page
    earlier = page_of(portal.get(thread_url(anna_thread) + "?before=6"))
    assert "message number 1<" in earlier and "message number 5<" in earlier and "message number 6<" not in earlier
    assert "Show earlier messages" not in earlier and "Back to the latest messages" in earlier


def test_other_patients_and_other_clinics_threads_are_not_found(portal, alpha, anna, boris_thread):
    neighbour = f.ThreadFactory(clinic=alpha.clinic, patient=f.PatientFactory(full_name="Nina Neighbour"))
    for thread in (boris_thread, neighbour):
        assert portal.get(thread_url(thread)).status_code == 404
        assert portal.post(thread_url(thread) + "send/", {"text": "hello"}).status_code == 404
    assert portal.get("/portal/threads/987654/").status_code == 404
    assert not Message.objects.exists()


def test_thread_page_without_consent_goes_to_the_consent_page(portal, alpha, anna, anna_thread):
    ConsentRecord.objects.filter(patient=anna).delete()
    response = portal.get(thread_url(anna_thread))
    assert response.status_code == 302
    assert response["Location"] == f"/portal/clinics/alpha/consent/?next=%2Fportal%2Fthreads%2F{anna_thread.pk}%2F"
    assert "please accept its personal data consent" in page_of(portal.get(response["Location"]))


def test_staff_and_strangers_do_not_get_the_portal_page(web, alpha, anna_thread):
    assert web.get(thread_url(anna_thread))["Location"] == f"/login/?next={thread_url(anna_thread)}"
    web.force_login(alpha.operator)
    assert web.get(thread_url(anna_thread))["Location"] == "/admin/"


# --- sending without JavaScript ----------------------------------------------------------


def test_plain_form_sends_a_message_and_returns_to_the_thread(portal, alpha, anna, anna_thread):
    page = page_of(portal.get(thread_url(anna_thread)))
    client_id = re.search(r'name="client_msg_id" value="(\w+)"', page).group(1)
    response = portal.post(thread_url(anna_thread) + "send/", {"text": "Is parking free?", "client_msg_id": client_id})
    assert response.status_code == 302 and response["Location"] == f"{thread_url(anna_thread)}#latest"
    # A double click sends the same form twice: still one message.
    portal.post(thread_url(anna_thread) + "send/", {"text": "Is parking free?", "client_msg_id": client_id})
    message = Message.objects.get()
    assert (message.text, message.author, message.sender) == ("Is parking free?", Message.Author.PATIENT, anna.user)
    page = page_of(portal.get(thread_url(anna_thread)))
    assert re.search(r'<li class="msg mine" data-seq="1".*?Is parking free\?', page, re.S)


def test_plain_form_sends_a_photo_with_a_thumbnail(portal, alpha, anna, anna_thread):
    response = portal.post(thread_url(anna_thread) + "send/", {"text": "", "file": png()})
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.message.kind == Message.Kind.ATTACHMENT and attachment.thumbnail
    page = page_of(portal.get(thread_url(anna_thread)))
    assert f'<img src="/files/{attachment.pk}/thumbnail/" alt="tooth.png" width="64" height="48"' in page
    assert portal.get(f"/files/{attachment.pk}/thumbnail/")["Content-Type"] == "image/jpeg"


def test_plain_form_sends_a_pdf_shown_as_a_file_link(portal, alpha, anna, anna_thread):
    body = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    pdf = SimpleUploadedFile("referral.pdf", body, content_type="application/pdf")
    assert portal.post(thread_url(anna_thread) + "send/", {"text": "My referral", "file": pdf}).status_code == 302
    attachment = Attachment.objects.get()
    page = page_of(portal.get(thread_url(anna_thread)))
    link = re.search(rf'<a class="file-link" href="/files/{attachment.pk}/\?inline=1"[^>]*>(.*?)</a>', page, re.S).group(1)
    assert "referral.pdf" in link and "<img" not in link


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        ({"text": "   "}, 400, "Write a message or attach a file."),
        ({"text": "я" * 4001}, 400, "The message is too long: 4001 characters, at most 4000."),
        ({"text": "see file", "file": SimpleUploadedFile("virus.pdf", b"MZ\x90\x00 not a pdf")}, 400, "Only photos"),
    ],
)
def test_plain_form_refusals_keep_the_text_and_say_why(portal, anna, anna_thread, data, status, reason):
    response = portal.post(thread_url(anna_thread) + "send/", data)
    assert response.status_code == status
    page = response.content.decode()
    assert reason in page
    assert f">{data['text']}</textarea>" in page
    assert not Message.objects.exists()


def test_plain_form_says_when_sending_too_fast(clock, portal, anna, anna_thread):  # stopped: one per-minute window
    for i in range(services.throttle.SEND_LIMIT_PER_MINUTE):
        assert portal.post(thread_url(anna_thread) + "send/", {"text": f"spam {i}"}).status_code == 302
    response = portal.post(thread_url(anna_thread) + "send/", {"text": "one more"})
    assert response.status_code == 429
    assert "You are sending messages too fast." in response.content.decode()
    assert ">one more</textarea>" in response.content.decode()


def test_plain_form_without_consent_goes_to_the_consent_page(portal, alpha, anna, anna_thread):
    ConsentRecord.objects.filter(patient=anna).delete()
    response = portal.post(thread_url(anna_thread) + "send/", {"text": "hello"})
    assert response.status_code == 302 and response["Location"].startswith("/portal/clinics/alpha/consent/?next=")
    assert not Message.objects.exists()


# --- cost --------------------------------------------------------------------------------


def _queries_for_thread_page(portal, alpha, anna, thread, count: int) -> int:
    for i in range(count):
        author = anna.user if i % 2 else alpha.operator
        upload = services.attachment_upload(thread=thread, actor=author, upload=png(f"p{i}.png")) if i % 5 == 0 else None
        services.send_message(thread=thread, actor=author, text=f"m{i}", attachment_ids=[upload.pk] if upload else [])
        cache.clear()
    with CaptureQueriesContext(connection) as queries:
        page_of(portal.get(thread_url(thread)))
    return len(queries)


def test_thread_page_queries_do_not_grow_with_the_history(portal, alpha, anna, anna_thread):
    few = _queries_for_thread_page(portal, alpha, anna, anna_thread, 5)
    other = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    many = _queries_for_thread_page(portal, alpha, anna, other, 40)
    assert many == few, (few, many)
