"""Bounds on what a client sends, checked once where it enters: JSON (API bodies and socket frames), NUL, dates.

Python's JSON decoder recurses once per nesting level, so a few thousand `[` raise
RecursionError; PostgreSQL refuses NUL (\\x00) in text, so a NUL that reaches a query
or an INSERT is a 500 there while SQLite stores it. Both are refused here, before any
view, service or query sees the value, with a message a person can read.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

# Nothing the portal, the admin or the socket sends nests deeper than a few levels.
MAX_JSON_DEPTH = 32
NUL = "\x00"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class ClientInputError(ValueError):
    """Input no view should see. `code` is stable for clients, `message` is for the person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _nesting_exceeds(text: str, limit: int) -> bool:
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual payload: no scan needed
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def has_nul(value: Any) -> bool:
    """A NUL anywhere in a decoded JSON value, keys included (depth is bounded before this runs)."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


def nul_refused() -> ClientInputError:
    return ClientInputError(
        "nul_character", _("The text contains a NUL character (\\u0000), which cannot be stored. Remove it and try again.")
    )


def _strict_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def json_decode(raw: str | bytes, *, max_bytes: int) -> Any:
    """Decode JSON a client sent, or raise ClientInputError: too big, not JSON, nested too deeply, or with a NUL."""
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientInputError("bad_json", _("The body is not UTF-8 text.")) from None
    if _nesting_exceeds(raw, MAX_JSON_DEPTH):
        raise ClientInputError("too_deep", _("The JSON is nested more than %(depth)s levels deep.") % {"depth": MAX_JSON_DEPTH})
    try:
        value = json.loads(raw, parse_constant=_strict_constant)
    except ValueError as exc:
        raise ClientInputError("bad_json", _("This is not valid JSON: %(error)s.") % {"error": exc}) from None
    # A NUL can only arrive escaped: the decoder refuses raw control characters inside strings.
    if "\\u0000" in raw and has_nul(value):
        raise nul_refused()
    return value


def too_large(max_bytes: int) -> ClientInputError:
    return ClientInputError("too_large", _("The request is too large: at most %(size)s KB.") % {"size": max_bytes // 1024})


# --- dates ------------------------------------------------------------------------------------------


def furthest_date() -> date:
    """The latest date any client may give (a visit, an offered slot, a search, a filter): PLANNING_HORIZON_DAYS from today."""
    return timezone.localdate() + timedelta(days=settings.PLANNING_HORIZON_DAYS)


# Reports and filters may reach far back, but dates before this are typing mistakes and
# would overflow once shifted by a time zone or a period.
EARLIEST_DATE = date(1900, 1, 1)


def date_in_bounds(value: date) -> None:
    if value < EARLIEST_DATE:
        raise ClientInputError("date_too_early", _("Give a date after %(date)s.") % {"date": EARLIEST_DATE.isoformat()})
    if value > furthest_date():
        raise ClientInputError("date_too_far", _("Give a date at most %(days)s days ahead.") % {"days": settings.PLANNING_HORIZON_DAYS})


def moment_in_bounds(value: datetime, *, days_ahead: int | None = None) -> None:
    """A moment a client gives is within `days_ahead` (default PLANNING_HORIZON_DAYS) of now, either way.

    Comparing aware datetimes never overflows; adding a zone's offset to year 9999 does, later.
    """
    days = settings.PLANNING_HORIZON_DAYS if days_ahead is None else days_ahead
    now = timezone.now()
    if value > now + timedelta(days=days):
        raise ClientInputError("date_too_far", _("Give a time at most %(days)s days ahead.") % {"days": days})
    if value < now - timedelta(days=settings.PLANNING_HORIZON_DAYS):
        raise ClientInputError("date_too_early", _("This time is long past."))


def parse_date(value: str) -> date:
    """date.fromisoformat for a date a client typed, within the bounds (ClientInputError is a ValueError)."""
    day = date.fromisoformat(value)
    date_in_bounds(day)
    return day


def parse_moment(value: str) -> datetime:
    """datetime.fromisoformat for a time a client chose, within the bounds (ClientInputError is a ValueError)."""
    moment = datetime.fromisoformat(value)
    if timezone.is_aware(moment):
        moment_in_bounds(moment)
    else:
        date_in_bounds(moment.date())
    return moment


def whole_number(value: Any) -> int | None:
    """An id or a count a client typed in a query or a form: ASCII digits that fit PostgreSQL's bigint, else None.

    `str.isdigit()` also accepts '²' and strings of 5,000 digits, on which int() raises.
    """
    text = str(value) if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
