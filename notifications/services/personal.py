"""The person's own settings (how to reach me) and the reminders a patient sets for their family."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from clinics.tenancy import require_acts_for
from notifications import kinds
from notifications.models import Notification, PersonalReminder, Preference
from patients.services import consent_require


def preference_update(*, user: Any, sms: bool, email: bool, promotions: bool, opted_out: bool) -> Preference:
    """How the person wants to be reached; nothing at all wins over the rest."""
    preference, _created = Preference.objects.update_or_create(
        user=user, defaults={"sms": sms, "email": email, "promotions": promotions, "opted_out": opted_out}
    )
    return preference


def personal_reminder_add(
    *, actor: Any, patient: Any, clinic: Any, text: str, next_at: datetime, repeat: str, repeat_until: date | None = None
) -> PersonalReminder:
    """A reminder the patient sets for themselves or a dependant, sent as the clinic's notice at that time."""
    require_acts_for(actor, patient, refusal=_("You can set reminders only for yourself and your family."))
    text = " ".join(text.split())
    if not text:
        raise ValidationError({"text": _("Write what to remind about.")})
    if next_at <= timezone.now():
        raise ValidationError({"next_at": _("Choose a time in the future.")})
    furthest = timezone.now() + timedelta(days=settings.REMINDER_HORIZON_DAYS)
    if next_at > furthest:
        raise ValidationError(
            {"next_at": _("A reminder can be set at most %(days)s days ahead.") % {"days": settings.REMINDER_HORIZON_DAYS}}
        )
    if repeat_until and repeat_until > furthest.date():
        raise ValidationError(
            {"repeat_until": _("A reminder can repeat at most %(days)s days ahead.") % {"days": settings.REMINDER_HORIZON_DAYS}}
        )
    if repeat != PersonalReminder.Repeat.ONCE and repeat_until and repeat_until < timezone.localtime(next_at, clinic.tz).date():
        raise ValidationError({"repeat_until": _("The last day must not be before the first reminder.")})
    with transaction.atomic():
        consent_require(patient=patient, clinic=clinic)
        return PersonalReminder.objects.create(
            patient=patient, clinic=clinic, text=text[:200], next_at=next_at, repeat=repeat, repeat_until=repeat_until
        )


def personal_reminder_cancel(*, actor: Any, reminder: PersonalReminder) -> None:
    require_acts_for(actor, reminder.patient, refusal=_("This reminder is not yours."))
    with transaction.atomic():
        PersonalReminder.objects.filter(pk=reminder.pk).update(is_active=False)
        Notification.objects.filter(personal_reminder=reminder, status=Notification.Status.PENDING).update(
            status=Notification.Status.CANCELLED
        )


REPEAT_STEP: dict[str, timedelta] = {PersonalReminder.Repeat.DAILY: timedelta(days=1), PersonalReminder.Repeat.WEEKLY: timedelta(days=7)}


def personal_reminders_queue(*, now: datetime | None = None) -> int:
    """The beat sweep for patients' own reminders: one notice per due time, then the next time or the end."""
    now = now or timezone.now()
    queued = 0
    with transaction.atomic():
        due = list(
            PersonalReminder.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(is_active=True, next_at__lte=now)
            .select_related("patient__guardian", "patient", "clinic")[:500]
        )
        for reminder in due:
            holder = reminder.patient.account_holder
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
            while step and following is not None and following <= now:  # the sweep was down for a while: do not send a backlog
                following += step
            ends = reminder.repeat_until
            if following is None or (ends and timezone.localtime(following, reminder.clinic.tz).date() > ends):
                reminder.is_active = False
            else:
                reminder.next_at = following
            reminder.save(update_fields=["is_active", "next_at"])
    return queued


def _text(notification: Notification, for_patient: bool) -> tuple[str, str]:
    subject = _("Reminder")
    link = settings.SITE_URL + reverse("portal-notifications")
    return subject, f"{subject}: {kinds.subject(notification.personal_reminder).text}\n{link}"


def register_kinds() -> None:
    """Called once from NotificationsConfig.ready()."""
    kinds.register(Notification.Kind.PERSONAL, text=_text)
