"""Writes of the delivery pipeline: dispatch a notification, send a delivery, record a provider's report.

At most once per channel: a delivery is marked `sending` (and the attempt
recorded) in its own committed transaction before the provider is called. If
the worker dies after that, the redelivered task finds `sending` and does not
call the provider again: an unknown outcome is recorded as interrupted rather
than risking a second SMS.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from messaging.text import preview
from notifications.models import Delivery, DeliveryAttempt, Notification, PersonalReminder, Preference
from notifications.providers import provider_for
from notifications.sms import SmsError

VISIT_LINK_SALT = "appointments.visit-link"
QUIET_STARTS = time(21)
QUIET_ENDS = time(9)
MAX_ATTEMPTS = 5


class TryAgain(Exception):
    """A temporary provider error: the task retries with a growing pause."""

    def __init__(self, error: str, attempts: int) -> None:
        super().__init__(error)
        self.attempts = attempts


def quiet_until(*, clinic: Any, now: datetime) -> datetime | None:
    """The next 09:00 in the clinic's zone if `now` is within 21:00–09:00 there, else None."""
    local = timezone.localtime(now, clinic.tz)
    if QUIET_ENDS <= local.time() < QUIET_STARTS:
        return None
    day = local.date() if local.time() < QUIET_ENDS else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_ENDS, tzinfo=clinic.tz)


def _patient_of(user: Any) -> Any:
    from patients.models import Patient

    return Patient.objects.filter(user=user).first()


def _already_read(notification: Notification, patient: Any) -> bool:
    message = notification.message
    if notification.kind != Notification.Kind.MESSAGE or message is None:
        return False
    thread = notification.thread
    read_seq = thread.patient_read_seq if patient is not None else thread.staff_read_seq
    return read_seq >= message.seq


def _visit_still_ahead(visit: Any, now: datetime) -> bool:
    from appointments.models import Appointment

    return visit.status in Appointment.UPCOMING and visit.starts_at > now


def visit_link_token(visit_id: int) -> str:
    """The signed part of the confirm/cancel link in a reminder: no sign-in needed from an SMS."""
    return signing.dumps(visit_id, salt=VISIT_LINK_SALT)


def _visit_text(notification: Notification) -> tuple[str, str]:
    visit = notification.visit
    clinic = notification.clinic
    local = timezone.localtime(visit.starts_at, clinic.tz)
    place = (visit.branch.address if visit.branch_id and visit.branch.address else clinic.address) or ""
    if notification.kind == Notification.Kind.CONFIRM:
        link = settings.SITE_URL + reverse("appointments:visit-link", args=[visit_link_token(visit.pk)])
        subject = _("Your visit to %(clinic)s") % {"clinic": clinic.name}
        text = _("%(clinic)s: visit on %(when)s, %(doctor)s. Please confirm or cancel: %(link)s") % {
            "clinic": clinic.name,
            "when": formats.date_format(local, "j E, H:i"),
            "doctor": visit.doctor.full_name,
            "link": link,
        }
    else:
        subject = _("Reminder: visit at %(time)s") % {"time": formats.time_format(local, "H:i")}
        text = _("%(clinic)s: your visit at %(time)s, %(doctor)s. %(place)s") % {
            "clinic": clinic.name,
            "time": formats.time_format(local, "H:i"),
            "doctor": visit.doctor.full_name,
            "place": place,
        }
    return subject, text.strip()


def _text(notification: Notification, *, for_patient: bool) -> tuple[str, str]:
    """(subject, text) in the clinic's language. Sensitive threads never put their words in an SMS."""
    clinic = notification.clinic
    thread = notification.thread
    with translation.override(settings.LANGUAGE_CODE):
        if notification.visit_id:
            return _visit_text(notification)
        if notification.personal_reminder_id:
            subject = _("Reminder")
            link = settings.SITE_URL + reverse("portal-notifications")
            return subject, f"{subject}: {notification.personal_reminder.text}\n{link}"
        if notification.promotion_id:
            promotion = notification.promotion
            link = settings.SITE_URL + reverse("promotions:promotion", args=[promotion.pk])
            return promotion.title, f"{clinic.name}: {promotion.title}. {link}"
        if for_patient:
            link = settings.SITE_URL + reverse("messaging:portal-thread", args=[thread.pk]) if thread else settings.SITE_URL
            subject = _("New message from %(clinic)s") % {"clinic": clinic.name}
        else:
            link = settings.SITE_URL + reverse("inbox:thread", args=[thread.pk]) if thread else settings.SITE_URL
            subject = {
                Notification.Kind.MENTION: _("You were mentioned in a note"),
                Notification.Kind.ASSIGNED: _("A conversation was assigned to you"),
            }.get(notification.kind, _("New message in your thread"))
        words = notification.message.text if notification.message_id and not (thread and thread.sensitive) else ""
        body = f"{subject}: «{preview(words, 80)}»" if words else subject
        return subject, f"{body}\n{link}"


def notification_dispatch(*, notification_id: int, now: datetime | None = None) -> Notification:
    """Decide whether and where a pending notification goes, and queue one delivery per channel.

    Skipped (with the reason kept) when the person opted out, withdrew consent or
    read the message meanwhile; postponed to 09:00 in the clinic's zone at night
    unless urgent.
    """
    from patients.selectors import consent_is_given

    now = now or timezone.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("clinic", "recipient", "thread", "message", "visit", "promotion", "personal_reminder")
            .get(pk=notification_id)
        )
        if notification.status != Notification.Status.PENDING or (notification.not_before and notification.not_before > now):
            return notification
        user = notification.recipient
        patient = _patient_of(user)
        preference = Preference.objects.filter(user=user).first() or Preference(user=user)
        skip = None
        if preference.opted_out:
            skip = Notification.Skip.OPTED_OUT
        elif patient is not None and not consent_is_given(patient=patient, clinic=notification.clinic):
            skip = Notification.Skip.NO_CONSENT
        elif _already_read(notification, patient):
            skip = Notification.Skip.READ
        elif notification.visit_id and not _visit_still_ahead(notification.visit, now):
            skip = Notification.Skip.VISIT_CHANGED
        elif notification.promotion_id and not preference.promotions:
            skip = Notification.Skip.OPTED_OUT
        elif notification.promotion_id and notification.promotion.valid_until < timezone.localtime(now, notification.clinic.tz).date():
            skip = Notification.Skip.ENDED
        if skip is None and not notification.urgent:
            later = quiet_until(clinic=notification.clinic, now=now)
            if later is not None:
                notification.not_before = later
                notification.save(update_fields=["not_before"])
                return notification
        routes = []
        if skip is None:
            if patient is not None and patient.phone and preference.sms:
                routes.append((Delivery.Channel.SMS, patient.phone.as_e164))
            email = patient.email if patient is not None else user.email
            if email and preference.email:
                routes.append((Delivery.Channel.EMAIL, email))
            if notification.promotion_id:  # only the channels the manager chose for this promotion
                promotion = notification.promotion
                routes = [
                    r
                    for r in routes
                    if (r[0] == Delivery.Channel.SMS and promotion.by_sms) or (r[0] == Delivery.Channel.EMAIL and promotion.by_email)
                ]
            if not routes:
                skip = Notification.Skip.NO_CHANNEL
        if skip is not None:
            notification.status = Notification.Status.SKIPPED
            notification.skip_reason = skip
            notification.save(update_fields=["status", "skip_reason"])
            return notification
        subject, text = _text(notification, for_patient=patient is not None)
        deliveries = [
            Delivery.objects.create(notification=notification, channel=channel, destination=to, subject=subject, text=text)
            for channel, to in routes
        ]
        notification.status = Notification.Status.DISPATCHED
        notification.dispatched_at = now
        notification.save(update_fields=["status", "dispatched_at"])
        transaction.on_commit(lambda: _queue([d.pk for d in deliveries]))
    return notification


def _queue(delivery_ids: list[int]) -> None:
    from notifications.tasks import deliver

    for delivery_id in delivery_ids:
        deliver.delay(delivery_id)


def due_notification_ids(*, now: datetime | None = None, limit: int = 5000) -> list[int]:
    """Pending notifications whose time has come, oldest first."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING)
        .exclude(not_before__gt=now)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def notifications_dispatch_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Dispatch, in this process, every notification due at `now` (tests and one-off runs; beat fans out instead)."""
    now = now or timezone.now()
    due = due_notification_ids(now=now, limit=limit)
    for notification_id in due:
        notification_dispatch(notification_id=notification_id, now=now)
    return len(due)


def _claim(delivery_id: int) -> tuple[Delivery | None, DeliveryAttempt | None]:
    """Mark the delivery `sending` and open an attempt, committed before the provider is called."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status == Delivery.Status.SENDING:
            # A worker died mid-send: the provider may have the message. Never send it twice.
            DeliveryAttempt.objects.filter(delivery=delivery, outcome=DeliveryAttempt.Outcome.IN_PROGRESS).update(
                outcome=DeliveryAttempt.Outcome.INTERRUPTED, finished_at=timezone.now()
            )
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = _("The sending worker stopped mid-send; not sent again to avoid a duplicate.")
            delivery.save(update_fields=["status", "last_error"])
            return None, None
        if delivery.status != Delivery.Status.PENDING:
            return None, None  # already sent, delivered or failed: a duplicate task does nothing
        visit = delivery.notification.visit
        if visit is not None and not _visit_still_ahead(visit, timezone.now()):
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = _("Not sent: the visit was cancelled, moved or has begun.")
            delivery.save(update_fields=["status", "last_error"])
            return None, None
        delivery.status = Delivery.Status.SENDING
        delivery.attempts += 1
        delivery.save(update_fields=["status", "attempts"])
        attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts)
    return delivery, attempt


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Hand one delivery to its provider. TryAgain on a temporary error while attempts remain."""
    delivery, attempt = _claim(delivery_id)
    if delivery is None:
        return None
    provider = provider_for(delivery.channel)
    try:
        message_id = provider.send(
            destination=delivery.destination, subject=delivery.subject, text=delivery.text, key=delivery.idempotency_key
        )
    except SmsError as exc:
        retry = exc.retryable and delivery.attempts < MAX_ATTEMPTS
        with transaction.atomic():
            attempt.outcome = DeliveryAttempt.Outcome.RETRY if retry else DeliveryAttempt.Outcome.FAILED
            attempt.error = str(exc)[:500]
            attempt.finished_at = timezone.now()
            attempt.save(update_fields=["outcome", "error", "finished_at"])
            delivery.status = Delivery.Status.PENDING if retry else Delivery.Status.FAILED
            delivery.last_error = str(exc)[:500]
            delivery.provider = provider.name
            delivery.save(update_fields=["status", "last_error", "provider"])
        if retry:
            raise TryAgain(str(exc), delivery.attempts) from exc
        return delivery
    with transaction.atomic():
        now = timezone.now()
        attempt.outcome = DeliveryAttempt.Outcome.SENT
        attempt.finished_at = now
        attempt.save(update_fields=["outcome", "finished_at"])
        delivery.status = Delivery.Status.SENT
        delivery.provider = provider.name
        delivery.provider_message_id = message_id[:100]
        delivery.sent_at = now
        delivery.last_error = ""
        delivery.save(update_fields=["status", "provider", "provider_message_id", "sent_at", "last_error"])
    return delivery


def delivery_report(*, provider: str, provider_message_id: str, delivered: bool, error: str = "") -> Delivery | None:
    """A provider's delivery report. None when no delivery of ours has that id (the caller answers 403)."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .filter(provider=provider, provider_message_id=provider_message_id)
            .exclude(provider_message_id="")
            .first()
        )
        if delivery is None:
            return None
        if delivered:
            delivery.status = Delivery.Status.DELIVERED
            delivery.delivered_at = timezone.now()
        else:
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = error[:500] or _("The provider could not deliver it.")
        delivery.save(update_fields=["status", "delivered_at", "last_error"])
    return delivery


# --- visit reminders ---------------------------------------------------------------------------


def visit_reminders_queue(*, now: datetime | None = None) -> int:
    """The beat sweep for visits: a confirm request (default 24 h before) and a short reminder (2 h).

    Each is written once per visit (a unique key: a second sweep adds nothing); a
    visit booked after a reminder's time gets only the later one. Delivery goes
    through the usual dispatch, which skips visits cancelled or moved meanwhile.
    """
    from appointments.models import Appointment, BookingRules

    now = now or timezone.now()
    rules = {r.clinic_id: r for r in BookingRules.objects.all()}
    default = BookingRules()
    longest = max(
        [default.confirm_hours_before, default.remind_hours_before]
        + [max(r.confirm_hours_before, r.remind_hours_before) for r in rules.values()]
    )
    visits = Appointment.objects.filter(
        status__in=Appointment.UPCOMING, starts_at__gt=now, starts_at__lte=now + timedelta(hours=longest)
    ).select_related("patient__guardian")
    rows = []
    for visit in visits:
        rule = rules.get(visit.clinic_id, default)
        holder = visit.patient.guardian if visit.patient.guardian_id else visit.patient
        if holder.user_id is None:
            continue  # no account: the clinic reaches this person by phone
        due = None
        for kind, hours in ((Notification.Kind.REMINDER, rule.remind_hours_before), (Notification.Kind.CONFIRM, rule.confirm_hours_before)):
            moment = visit.starts_at - timedelta(hours=hours)
            if hours and moment <= now and visit.created_at <= moment:
                due = kind
                break  # the later reminder replaces an earlier one that is overdue
        if due is not None:
            rows.append(
                Notification(
                    clinic_id=visit.clinic_id, recipient_id=holder.user_id, kind=due, visit=visit, reason="visit", key=f"{due}:{visit.pk}"
                )
            )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def visit_notifications_cancel(*, visit_id: int) -> int:
    """A visit was cancelled or moved: its reminders still waiting are dropped (dispatch would skip them anyway)."""
    return Notification.objects.filter(visit_id=visit_id, status=Notification.Status.PENDING).update(status=Notification.Status.CANCELLED)


# --- the patient's own settings and reminders ------------------------------------------------------


def preference_update(*, user: Any, sms: bool, email: bool, promotions: bool, opted_out: bool) -> Preference:
    """How the person wants to be reached; nothing at all wins over the rest."""
    preference, _created = Preference.objects.update_or_create(
        user=user, defaults={"sms": sms, "email": email, "promotions": promotions, "opted_out": opted_out}
    )
    return preference


def personal_reminder_add(
    *, actor: Any, patient: Any, clinic: Any, text: str, next_at: datetime, repeat: str, repeat_until: Any = None
) -> PersonalReminder:
    """A reminder the patient sets for themselves or a dependant, sent as the clinic's notice at that time."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from clinics.tenancy import portal_holder_id
    from patients.services import consent_require

    if portal_holder_id(actor) != patient.account_holder.pk:
        raise PermissionDenied(_("You can set reminders only for yourself and your family."))
    text = " ".join(text.split())
    if not text:
        raise ValidationError({"text": _("Write what to remind about.")})
    if next_at <= timezone.now():
        raise ValidationError({"next_at": _("Choose a time in the future.")})
    if repeat != PersonalReminder.Repeat.ONCE and repeat_until and repeat_until < timezone.localtime(next_at, clinic.tz).date():
        raise ValidationError({"repeat_until": _("The last day must not be before the first reminder.")})
    consent_require(patient=patient, clinic=clinic)
    return PersonalReminder.objects.create(
        patient=patient, clinic=clinic, text=text[:200], next_at=next_at, repeat=repeat, repeat_until=repeat_until
    )


def personal_reminder_cancel(*, actor: Any, reminder: PersonalReminder) -> None:
    from django.core.exceptions import PermissionDenied

    from clinics.tenancy import portal_holder_id

    if portal_holder_id(actor) != reminder.patient.account_holder.pk:
        raise PermissionDenied(_("This reminder is not yours."))
    with transaction.atomic():
        PersonalReminder.objects.filter(pk=reminder.pk).update(is_active=False)
        Notification.objects.filter(personal_reminder=reminder, status=Notification.Status.PENDING).update(
            status=Notification.Status.CANCELLED
        )


REPEAT_STEP = {PersonalReminder.Repeat.DAILY: timedelta(days=1), PersonalReminder.Repeat.WEEKLY: timedelta(days=7)}


def personal_reminders_queue(*, now: datetime | None = None) -> int:
    """The beat sweep for patients' own reminders: one notice per due time, then the next time or the end."""
    now = now or timezone.now()
    queued = 0
    with transaction.atomic():
        due = list(
            PersonalReminder.objects.select_for_update(skip_locked=True)
            .filter(is_active=True, next_at__lte=now)
            .select_related("patient__guardian", "patient", "clinic")[:500]
        )
        for reminder in due:
            holder = reminder.patient.guardian if reminder.patient.guardian_id else reminder.patient
            if holder.user_id:
                _n, created = Notification.objects.get_or_create(
                    key=f"personal:{reminder.pk}:{int(reminder.next_at.timestamp())}",
                    defaults={
                        "clinic": reminder.clinic,
                        "recipient_id": holder.user_id,
                        "kind": Notification.Kind.PERSONAL,
                        "personal_reminder": reminder,
                        "reason": "personal",
                    },
                )
                queued += created
            step = REPEAT_STEP.get(reminder.repeat)
            following = reminder.next_at + step if step else None
            while following is not None and following <= now:  # the sweep was down for a while: do not send a backlog
                following += step
            ends = reminder.repeat_until
            if following is None or (ends and timezone.localtime(following, reminder.clinic.tz).date() > ends):
                reminder.is_active = False
            else:
                reminder.next_at = following
            reminder.save(update_fields=["is_active", "next_at"])
    return queued
