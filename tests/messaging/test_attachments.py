"""Files in threads: sniffed by their bytes, thumbnails for photos, downloads only for participants."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from messaging.models import Attachment
from tests import factories as f

pytestmark = pytest.mark.django_db


def photo(name="tooth.jpg", fmt="JPEG", size=(1600, 1200)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def pdf() -> SimpleUploadedFile:
    body = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    return SimpleUploadedFile("referral.pdf", body, content_type="application/pdf")


def upload(api, thread, file):
    return api.post(f"/api/threads/{thread.pk}/attachments/", {"file": file}, format="multipart")


def test_photo_upload_gets_a_thumbnail_and_is_sent_with_a_message(api, web, alpha, anna, anna_thread):
    api.force_authenticate(anna.user)
    uploaded = upload(api, anna_thread, photo())
    assert uploaded.status_code == 201, uploaded.json()
    body = uploaded.json()
    assert (body["content_type"], body["width"], body["height"]) == ("image/jpeg", 1600, 1200)
    sent = api.post(f"/api/threads/{anna_thread.pk}/messages/", {"attachments": [body["id"]]}, format="json")
    assert sent.status_code == 201 and sent.json()["kind"] == "attachment"
    assert sent.json()["attachments"][0]["thumbnail_url"]
    web.force_login(alpha.operator)
    thumb = web.get(body["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(b"".join(thumb.streaming_content))).size) <= 480
    full = web.get(body["url"])
    assert full.status_code == 200 and full["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("file", "words"),
    [
        (SimpleUploadedFile("scan.pdf", b"<html><script>alert(1)</script></html>", content_type="application/pdf"), "Only photos"),
        (SimpleUploadedFile("photo.jpg", b"MZ\x90\x00" + b"\x00" * 500, content_type="image/jpeg"), "Only photos"),
        (SimpleUploadedFile("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png"), "damaged"),
        (SimpleUploadedFile("empty.pdf", b"", content_type="application/pdf"), "empty"),
    ],
)
def test_disguised_or_broken_files_are_refused(api, anna, anna_thread, file, words):
    api.force_authenticate(anna.user)
    response = upload(api, anna_thread, file)
    assert response.status_code == 400 and words in response.json()["detail"]
    assert not Attachment.objects.exists()


def test_files_over_ten_megabytes_are_refused(api, anna, anna_thread):
    api.force_authenticate(anna.user)
    big = SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024), content_type="application/pdf")
    response = upload(api, anna_thread, big)
    assert response.status_code == 400 and "10 MB" in response.json()["detail"]
    assert not Attachment.objects.exists()


def test_pdf_is_accepted_and_downloads_as_a_file(api, web, anna, anna_thread):
    api.force_authenticate(anna.user)
    body = upload(api, anna_thread, pdf()).json()
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "My referral", "attachments": [body["id"]]}, format="json")
    web.force_login(anna.user)
    response = web.get(body["url"])
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment")


def test_nobody_outside_the_thread_can_download(api, web, alpha, beta, anna, anna_thread):
    api.force_authenticate(anna.user)
    body = upload(api, anna_thread, photo()).json()
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"attachments": [body["id"]]}, format="json")
    stranger = f.PatientFactory()
    for user in (stranger.user, beta.operator, beta.owner, alpha.doctor_user):  # Dima: not his doctor thread
        web.force_login(user)
        assert web.get(body["url"]).status_code == 404, user
        assert web.get(body["thumbnail_url"]).status_code == 404, user
    web.logout()
    assert web.get(body["url"]).status_code == 302  # to sign-in


def test_a_file_in_a_private_note_is_never_served_to_the_patient(api, web, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    body = upload(api, anna_thread, pdf()).json()
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "lab invoice", "attachments": [body["id"]], "note": True}, format="json")
    web.force_login(anna.user)
    assert web.get(body["url"]).status_code == 404
    web.force_login(alpha.manager)
    assert web.get(body["url"]).status_code == 200


def test_someone_elses_unsent_upload_cannot_be_attached(api, alpha, anna, anna_thread):
    api.force_authenticate(alpha.operator)
    body = upload(api, anna_thread, pdf()).json()
    api.force_authenticate(anna.user)
    response = api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "mine now", "attachments": [body["id"]]}, format="json")
    assert response.status_code == 400
    assert Attachment.objects.get().message is None


def test_upload_to_another_clinics_thread_is_not_found(api, anna, boris_thread):
    api.force_authenticate(anna.user)
    assert upload(api, boris_thread, photo()).status_code == 404
    assert not Attachment.objects.exists()


def test_heic_photo_from_an_iphone_is_accepted(api, anna, anna_thread):
    from pillow_heif import from_pillow

    buffer = io.BytesIO()
    from_pillow(Image.new("RGB", (64, 48), (10, 120, 200))).save(buffer, quality=50)
    api.force_authenticate(anna.user)
    response = upload(api, anna_thread, SimpleUploadedFile("IMG_0001.HEIC", buffer.getvalue(), content_type="application/octet-stream"))
    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == "image/heic" and response.json()["width"] == 64
