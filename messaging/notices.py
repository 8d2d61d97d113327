"""What the outbox says about a conversation (a new message, a mention, an assignment), and when it need not.

Registered with notifications.kinds from MessagingConfig.ready(): the outbox sits below messaging.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from messaging.text import preview
from notifications import kinds
from notifications.models import Notification, Preference


def _already_read(notification: Notification, patient: Any, preference: Preference, now: datetime) -> str | None:
    """Everything the notice is about was read meanwhile (a burst: every message of it)."""
    thread = notification.thread
    if thread is None:
        return None
    read = thread.patient_read_seq >= thread.last_public_seq if patient is not None else thread.staff_read_seq >= thread.last_seq
    return Notification.Skip.READ if read else None


def _text(notification: Notification, for_patient: bool) -> tuple[str, str]:
    """(subject, text); the caller picks the clinic's language. Sensitive threads never put their words in an SMS."""
    clinic = kinds.subject(notification.clinic)
    thread = notification.thread
    if for_patient:
        link = settings.SITE_URL + reverse("messaging:portal-thread", args=[thread.pk]) if thread else settings.SITE_URL
        subject = _("New message from %(clinic)s") % {"clinic": clinic.name}
    else:
        link = settings.SITE_URL + reverse("inbox:thread", args=[thread.pk]) if thread else settings.SITE_URL
        subjects: dict[str, str] = {
            Notification.Kind.MENTION: _("You were mentioned in a note"),
            Notification.Kind.ASSIGNED: _("A conversation was assigned to you"),
        }
        subject = subjects.get(notification.kind, _("New message in your thread"))
    # The newest words of the thread (a burst is one notice), never those of a sensitive thread.
    words = thread.last_message_preview if thread and not thread.sensitive else ""
    body = f"{subject}: «{preview(words, 80)}»" if words else subject
    return subject, f"{body}\n{link}"


def register_kinds() -> None:
    """Called once from MessagingConfig.ready(). Only a new message is dropped when read in time."""
    kinds.register(Notification.Kind.MESSAGE, text=_text, skip=_already_read)
    kinds.register(Notification.Kind.MENTION, Notification.Kind.ASSIGNED, text=_text)
