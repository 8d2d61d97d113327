"""The one server rendering of a message (per audience side) and of an inbox row.

A message is drawn by one template per side: `admin/messaging/_inbox_message.html` for staff
(private notes, staff events, read receipts) and `messaging/_portal_message.html` for the
patient (their bubbles, offered times as buttons, "Remind me"). The two sides differ in what
they may show (a patient never gets a note, a staff name the clinic hides, or the staff
event data), in their markup (two products, two style sheets) and in the actions beside a
message, so they are two templates; each is used both by the page and, through
`messaging.payloads`, by the socket event, which carries the fragment already rendered.
JavaScript inserts fragments; it never builds a stored message.

Socket fragments are rendered once per language of settings.LANGUAGES (the readers of one
event may use either) and in the thread's clinic's zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django_htmx.middleware import HtmxDetails

from clinics.zones import zone_label
from messaging.models import Message, Thread
from notifications.selectors import REMINDABLE_AUTHORS
from patients.selectors import patient_sees_zones


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's middleware: `request.htmx` is true for the pages' own fetches
    (htmx, inbox.js and chat.js send HX-Request), which get the fragment alone."""

    htmx: HtmxDetails


STAFF_MESSAGE = "admin/messaging/_inbox_message.html"
PATIENT_MESSAGE = "messaging/_portal_message.html"
INBOX_ROW = "admin/messaging/_inbox_row.html"


def per_language(render: Callable[[], str], *, zone: Any, languages: list[str] | None = None) -> dict[str, str]:
    """{language code: html} of one fragment (every language of the site unless told), in the given time zone."""
    out = {}
    with timezone.override(zone):
        for code in languages or [code for code, _name in settings.LANGUAGES]:
            with translation.override(code):
                out[code] = render()
    return out


# --- staff side --------------------------------------------------------------------------------


def staff_receipt(message: Message, thread: Thread) -> str:
    """The ticks under a staff reply: read or delivered by the patient, or only sent."""
    if message.author != Message.Author.STAFF or message.kind == Message.Kind.NOTE:
        return ""
    if message.seq <= thread.patient_read_seq:
        return "read"
    return "delivered" if message.seq <= thread.patient_delivered_seq else "sent"


def staff_message_context(message: Message, item: dict[str, Any], thread: Thread) -> dict[str, Any]:
    """What `_inbox_message.html` places: the staff payload, the local time, the receipt."""
    return {"m": {**item, "created": timezone.localtime(message.created_at), "receipt": staff_receipt(message, thread)}}


def staff_message_html(message: Message, item: dict[str, Any], thread: Thread) -> str:
    return get_template(STAFF_MESSAGE).render(staff_message_context(message, item, thread))


# --- patient side ------------------------------------------------------------------------------


def day_label(moment: datetime, today: date) -> str:
    day = moment.date()
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    return date_format(moment, "j E" if day.year == today.year else "j E Y")


def patient_tick_state(seq: int, thread: Thread) -> str:
    """One tick stored, two delivered to the clinic, two highlighted read by the clinic."""
    if seq <= thread.staff_read_seq:
        return "read"
    if seq <= thread.staff_delivered_seq:
        return "delivered"
    return "sent"


def offer_closed_reasons() -> dict[str, str]:
    """Why the buttons of an earlier offer no longer book, by the visit event that came after it (chat.js says the same live)."""
    return {
        "booked": _("You booked a visit after these times were offered: they are closed. Ask in the chat for other times."),
        "moved": _("You moved a visit after these times were offered: they are closed. Ask in the chat for other times."),
        "cancelled": _("A visit was cancelled after these times were offered: they are closed. Ask in the chat for new times."),
        "passed": _("These times have passed. Ask in the chat for new times."),
    }


def offer_closed_by(seq: int, events: list[tuple[int, str]]) -> str:
    """The first visit event after the offer at `seq` (the page and the socket apply the same rule), or ""."""
    return next((event for event_seq, event in events if event_seq > seq), "")


def slot_links(thread: Thread, slots: list[dict[str, Any]], *, zone: str = "", now: datetime | None = None) -> list[dict[str, Any]]:
    """Offered times with a link to the portal's confirm page: the buttons work without JavaScript too
    (chat.js books them with one tap through the API instead). A time already past has no link."""
    base = reverse("appointments:book-confirm", args=[thread.clinic.slug])
    now = now or timezone.now()
    out = []
    for slot in slots:
        try:
            local = datetime.fromisoformat(slot["starts_at"]).astimezone(thread.clinic.tz)
            query = {
                "service": int(slot["service"]),
                "doctor": int(slot["doctor"]),
                "at": local.strftime("%Y-%m-%dT%H:%M"),
                "for": thread.patient_id,
            }
        except (KeyError, TypeError, ValueError):
            continue  # a malformed stored offer shows no button rather than breaking the page
        out.append({**slot, "url": f"{base}?{urlencode(query)}", "when": local, "zone": zone, "passed": local <= now})
    return out


def reminder_url(thread: Thread) -> str:
    """ "Set a reminder" in the chat header; "Remind me" under a clinic's message adds its seq (its words prefill the form)."""
    return f"{reverse('portal-reminder-new')}?{urlencode({'thread': thread.pk})}"


class PatientSide:
    """What the patient's bubbles of one thread need beyond the payload, computed once for a page or an event."""

    def __init__(self, thread: Thread, *, with_slots: bool, events: list[tuple[int, str]] | None = None) -> None:
        self.thread = thread
        self.now = timezone.now()
        self.today = self.now.astimezone(thread.clinic.tz).date()
        self.reminder_url = reminder_url(thread)
        # The zone beside offered times costs a query: only when some message offers times.
        self.zone = (
            zone_label(time_zone=thread.clinic.time_zone, moment=self.now)
            if with_slots and patient_sees_zones(patient=thread.patient)
            else ""
        )
        self.events = events or []
        self.reasons = offer_closed_reasons() if with_slots else {}

    def item(self, message: Message, payload: dict[str, Any]) -> dict[str, Any]:
        local = message.created_at.astimezone(self.thread.clinic.tz)
        mine = message.author == Message.Author.PATIENT
        item = {
            **payload,
            "mine": mine,
            "created": message.created_at,
            "day": local.date().isoformat(),
            "day_label": day_label(local, self.today),
            "state": patient_tick_state(message.seq, self.thread) if mine else "",
            "remind_url": f"{self.reminder_url}&message={message.seq}" if message.author in REMINDABLE_AUTHORS else "",
        }
        if item["slots"]:
            item["slots"] = slot_links(self.thread, item["slots"], zone=self.zone, now=self.now)
            closed_by = offer_closed_by(message.seq, self.events) or ("passed" if all(s["passed"] for s in item["slots"]) else "")
            item["offer_closed"] = self.reasons.get(closed_by, "")
        return item


def patient_message_html(item: dict[str, Any]) -> str:
    return get_template(PATIENT_MESSAGE).render({"m": item})


# --- inbox row ---------------------------------------------------------------------------------


def waiting_label(since: datetime, now: datetime) -> str:
    """ "waiting 12 min" — the same wording inbox.js uses when it ticks the labels forward."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return _("waiting %(minutes)s min") % {"minutes": minutes}
    if minutes < 24 * 60:
        return _("waiting %(hours)s h %(minutes)s min") % {"hours": minutes // 60, "minutes": minutes % 60}
    return _("waiting %(days)s d") % {"days": minutes // (24 * 60)}


def short_time(moment: datetime, now: datetime) -> str:
    local, today = timezone.localtime(moment), timezone.localtime(now).date()
    return date_format(local, "H:i") if local.date() == today else date_format(local, "j M")


def row_context(row: Any, *, url: str, current: bool, clinic: str, now: datetime) -> dict[str, Any]:
    """What `_inbox_row.html` places, as strings: the template only places them."""
    return {
        "row": row,
        "url": url,
        "waiting": waiting_label(row.waiting_since, now) if row.waiting_since else "",
        "when": short_time(row.last_activity_at, now),
        "current": current,
        "clinic": clinic,
    }
