"""Files in conversations: uploaded first, bound to a message when it is sent, purged if never sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.files import inspect_upload
from messaging.models import Attachment, Message, Thread
from messaging.services.acting import side_of
from patients.services import consent_require


def attachment_upload(*, thread: Thread, actor: Any, upload: Any) -> Attachment:
    """Check and store a file for a message that is about to be sent (send_message attaches it)."""
    side = side_of(actor, thread)
    if side == Message.Author.PATIENT:
        consent_require(patient=thread.patient, clinic=thread.clinic)
    inspected = inspect_upload(upload)
    name = (getattr(upload, "name", "") or "file")[-200:]
    attachment = Attachment(
        thread=thread,
        uploaded_by=actor,
        content_type=inspected.content_type,
        size=upload.size,
        original_name=name,
        width=inspected.width,
        height=inspected.height,
    )
    attachment.file.save(name, upload, save=False)
    if inspected.thumbnail is not None:
        attachment.thumbnail.save("thumb.jpg", inspected.thumbnail, save=False)
    try:
        with transaction.atomic():
            attachment.save()
    except Exception:
        _delete_files(attachment)
        raise
    return attachment


def attachments_bind(*, message: Message, sender: Any, attachment_ids: list[int]) -> list[Attachment]:
    """Bind the uploaded files to the message: each must be the sender's, in this thread, not sent yet."""
    attachments = list(
        Attachment.objects.select_for_update().filter(pk__in=attachment_ids, thread_id=message.thread_id, message__isnull=True)
    )
    if len(attachments) != len(attachment_ids) or any(a.uploaded_by_id != getattr(sender, "pk", None) for a in attachments):
        raise ValidationError({"attachments": _("A file is not available: upload it again.")}, code="attachment")
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(message=message)
    for attachment in attachments:
        attachment.message = message
    return attachments


def attachments_purge_unsent(*, older_than: timedelta = timedelta(hours=24)) -> int:
    """Files uploaded but never sent (a closed tab) are removed after a day."""
    stale = Attachment.objects.filter(message__isnull=True, created_at__lt=timezone.now() - older_than)
    count = 0
    for attachment in stale:
        _delete_files(attachment)
        attachment.delete()
        count += 1
    return count


def _delete_files(attachment: Attachment) -> None:
    attachment.file.delete(save=False)
    if attachment.thumbnail:
        attachment.thumbnail.delete(save=False)
