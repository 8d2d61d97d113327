"""A patient's SMS answer to a visit's confirm request: 1 confirms, 2 cancels, other words reach the clinic's chat.

It acts on the visit exactly as the reminder's link does (appointments.links), so it lives with visits;
the outbox below only tells which confirm request went to the sender's number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from accounts.destinations import parse_destination
from appointments import services as visits
from appointments.models import Visit
from audit.models import AuditEvent
from audit.services import audit_record
from messaging.models import Thread
from messaging.services import SendingTooFast, send_message, thread_open
from notifications.models import Delivery, Notification
from patients.services import ConsentOutdated, ConsentRequired

CONFIRM_WORDS = frozenset({"1", "да", "yes", "подтверждаю", "ok", "ок"})  # "ок" in Cyrillic: the same word typed on a Russian keyboard
CANCEL_WORDS = frozenset({"2", "нет", "no", "отмена", "отменить", "cancel"})
REPLY_ACTION = "visit.sms_reply"


@dataclass(frozen=True)
class SmsReply:
    """What a patient's SMS answer did, and the words to text back (empty: answer nothing)."""

    outcome: str  # confirmed | already_confirmed | cancelled | passed (to the thread) | refused | no_visit | duplicate
    answer: str
    visit: Visit | None = None


def confirm_request_to(*, provider: str, phone: str, now: datetime) -> Delivery | None:
    """The newest confirm request this provider texted to `phone` (E.164) whose visit is still ahead, or None.

    The phone is the only key an SMS reply carries, so only a request that went to
    that very number can be answered from it.
    """
    if not phone:
        return None
    return (
        Delivery.objects.filter(
            channel=Delivery.Channel.SMS,
            provider=provider,
            destination=phone,
            status__in=[Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.UNKNOWN],  # a reply proves it arrived
            notification__kind=Notification.Kind.CONFIRM,
            notification__visit__status__in=Visit.UPCOMING,
            notification__visit__starts_at__gt=now,
        )
        .select_related("notification__visit__clinic", "notification__visit__patient__guardian__user", "notification__visit__patient__user")
        .order_by("-notification__created_at", "-pk")
        .first()
    )


def _sender_e164(phone: str) -> str:
    """The sender's number as deliveries keep it (E.164), or '' when it is no phone number: the sign-in form's parser."""
    try:
        destination = parse_destination(phone, region=settings.PHONENUMBER_DEFAULT_REGION)
    except ValidationError:
        return ""
    return destination.value if destination.is_phone else ""


def _reply_word(text: str) -> str:
    """'Да!', ' NO ', '«1»' → the keyword, as typed on any phone."""
    return text.strip().strip(" .,!?;:\"'«»()").casefold()


def sms_reply_handle(*, provider: str, phone: str, text: str, provider_message_id: str) -> SmsReply:
    """A patient's SMS answer to the confirm request: 1 confirms, 2 cancels, exactly as the link in it would.

    The sender's number is the only key: the reply applies to the newest confirm
    request texted to that number whose visit is still ahead, acting as the
    account holder who got it (so a late cancellation is flagged late and the
    freed slot is offered). Every handled reply is audited with its words; the
    same provider message seen again changes nothing (a replayed request).
    """
    delivery = confirm_request_to(provider=provider, phone=_sender_e164(phone), now=timezone.now())
    visit = delivery.notification.visit if delivery else None
    actor = visit.patient.account_holder.user if visit else None  # as the reminder's link page acts
    with translation.override(settings.LANGUAGE_CODE):
        if visit is None or actor is None:
            return SmsReply("no_visit", _("No upcoming visit to confirm from this number."))
        seen = AuditEvent.objects.filter(actor=actor, action=REPLY_ACTION, data__message_id=provider_message_id)
        if provider_message_id and seen.exists():
            return SmsReply("duplicate", "", visit)

        def note(outcome: str) -> None:
            data = {"reply": text.strip()[:160], "outcome": outcome, "provider": provider, "message_id": provider_message_id[:100]}
            audit_record(actor=actor, action=REPLY_ACTION, clinic=visit.clinic, patient=visit.patient, target=visit, data=data)

        word = _reply_word(text)
        local = timezone.localtime(visit.starts_at, visit.clinic.tz)
        facts = {"clinic": visit.clinic.name, "when": formats.date_format(local, "j E, H:i")}
        try:
            with transaction.atomic():
                if word in CANCEL_WORDS:
                    cancelled = visits.visit_cancel(actor=actor, visit=visit, reason=_("Cancelled by SMS reply"))
                    outcome, answer = "cancelled", _("%(clinic)s: visit on %(when)s cancelled.") % facts
                    if cancelled.cancelled_late:
                        answer = (
                            _("%(clinic)s: visit on %(when)s cancelled (late: less than the clinic's notice before the visit).") % facts
                        )
                elif word in CONFIRM_WORDS and visit.status == Visit.Status.CONFIRMED:
                    outcome, answer = "already_confirmed", _("%(clinic)s: visit on %(when)s is already confirmed.") % facts
                elif word in CONFIRM_WORDS:
                    visits.visit_confirm(actor=actor, visit=visit)
                    outcome, answer = "confirmed", _("%(clinic)s: visit on %(when)s confirmed. Thank you!") % facts
                else:  # words for the clinic ("running 10 minutes late"): they reach the operators as a message
                    thread = _reply_thread(visit)
                    send_message(thread=thread, actor=actor, text=text, client_msg_id=f"sms-{provider_message_id}"[:64])
                    outcome = "passed"
                    answer = _("%(clinic)s got your message. To confirm the visit reply 1, to cancel reply 2. Chat: %(link)s") % {
                        **facts,
                        "link": settings.SITE_URL + reverse("messaging:portal-thread", args=[thread.pk]),
                    }
                note(outcome)
        except (ValidationError, PermissionDenied, SendingTooFast, ConsentRequired, ConsentOutdated) as exc:  # changed meanwhile: say why
            outcome, answer = "refused", " ".join(getattr(exc, "messages", [str(exc)]))
            note(outcome)
    return SmsReply(outcome, answer, visit)


def _reply_thread(visit: Visit) -> Thread:
    """Where an SMS reply's words go: the visit's conversation, else the patient's thread with the clinic."""
    if visit.thread is not None:
        return visit.thread
    thread, _created = thread_open(patient=visit.patient, clinic=visit.clinic, actor=None)
    return thread
