"""Visit reminders through the outbox: the sweep that queues them, what they say, and when they are dropped.

The outbox (notifications) sits below appointments: the texts and the "still ahead" check of
the two visit kinds are registered with notifications.kinds from AppointmentsConfig.ready().
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from appointments.links import visit_link_token
from appointments.models import BookingRules, Visit
from clinics.zones import zone_label
from notifications import kinds
from notifications.models import Delivery, Notification, Preference
from notifications.sms import sms_replies_supported
from patients.selectors import patient_sees_zones


def visit_reminders_queue(*, now: datetime | None = None) -> int:
    """The beat sweep for visits: a confirm request (default 24 h before) and a short reminder (2 h).

    Each is written once per visit (a unique key: a second sweep adds nothing); a
    visit booked after a reminder's time gets only the later one. Delivery goes
    through the usual dispatch, which skips visits cancelled or moved meanwhile.
    """
    now = now or timezone.now()
    rules = {r.clinic_id: r for r in BookingRules.objects.all()}
    default = BookingRules()
    longest = max(
        [default.confirm_hours_before, default.remind_hours_before]
        + [max(r.confirm_hours_before, r.remind_hours_before) for r in rules.values()]
    )
    visits = Visit.objects.filter(
        status__in=Visit.UPCOMING, starts_at__gt=now, starts_at__lte=now + timedelta(hours=longest)
    ).select_related("patient__guardian")
    rows = []
    for visit in visits:
        rule = rules.get(visit.clinic_id, default)
        holder = visit.patient.account_holder
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


def _visit_still_ahead(visit: Visit, now: datetime) -> bool:
    return visit.status in Visit.UPCOMING and visit.starts_at > now


def _skip(notification: Notification, patient: Any, preference: Preference, now: datetime) -> str | None:
    return None if _visit_still_ahead(kinds.subject(notification.visit), now) else Notification.Skip.VISIT_CHANGED


def _unwanted(notification: Notification, now: datetime) -> str | None:
    ahead = _visit_still_ahead(kinds.subject(notification.visit), now)
    return None if ahead else _("Not sent: the visit was cancelled, moved or has begun.")


def _visit_text(notification: Notification, for_patient: bool) -> tuple[str, str]:
    visit = kinds.subject(notification.visit)
    clinic = kinds.subject(notification.clinic)
    local = timezone.localtime(visit.starts_at, clinic.tz)
    # A person with clinics in several zones reads the zone beside the time (clinics.zones).
    zone = f" ({zone_label(time_zone=clinic.time_zone, moment=visit.starts_at)})" if patient_sees_zones(patient=visit.patient) else ""
    place = (visit.branch.address if visit.branch and visit.branch.address else clinic.address) or ""
    if notification.kind == Notification.Kind.CONFIRM:
        link = settings.SITE_URL + reverse("appointments:visit-link", args=[visit_link_token(visit.pk)])
        subject = _("Your visit to %(clinic)s") % {"clinic": clinic.name}
        text = _("%(clinic)s: visit on %(when)s, %(doctor)s. Please confirm or cancel: %(link)s") % {
            "clinic": clinic.name,
            "when": formats.date_format(local, "j E, H:i") + zone,
            "doctor": visit.doctor.full_name,
            "link": link,
        }
    else:
        subject = _("Reminder: visit at %(time)s") % {"time": formats.time_format(local, "H:i")}
        text = _("%(clinic)s: your visit at %(time)s, %(doctor)s. %(place)s") % {
            "clinic": clinic.name,
            "time": formats.time_format(local, "H:i") + zone,
            "doctor": visit.doctor.full_name,
            "place": place,
        }
    return subject, text.strip()


def _channel_text(notification: Notification, channel: str, text: str) -> str:
    """The confirm request by SMS invites a reply where the provider passes replies back; e-mail keeps the link only."""
    if channel != Delivery.Channel.SMS or notification.kind != Notification.Kind.CONFIRM or not sms_replies_supported():
        return text
    hint = _("Reply 1 to confirm or 2 to cancel.")  # in the clinic's language: the caller has chosen it
    return f"{text} {hint}"


def register_kinds() -> None:
    """Called once from AppointmentsConfig.ready()."""
    kinds.register(
        Notification.Kind.CONFIRM, Notification.Kind.REMINDER, text=_visit_text, skip=_skip, unwanted=_unwanted, channel_text=_channel_text
    )
