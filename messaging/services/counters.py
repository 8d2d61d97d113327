"""The thread's counters after a new message: the rules, declared once, rendered for both stores.

Each rule says which Thread field changes, to what, for which authors and whether only for
messages the patient can see (`public`). `orm_changes` renders them to `update(**changes)`
expressions (the portable store), `sql_set_list` to the SET list of the PostgreSQL statement;
neither adds a rule of its own. The Message columns both stores insert are declared here too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, assert_never

from django.db import models
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce

from messaging.models import Message, Thread

PATIENT, STAFF, SYSTEM, BOT = Message.Author.PATIENT, Message.Author.STAFF, Message.Author.SYSTEM, Message.Author.BOT
EVERYONE = frozenset({PATIENT, STAFF, SYSTEM, BOT})

# The patient is back: a resolved or snoozed thread needs an answer again.
REOPENED_BY_PATIENT = (Thread.Status.RESOLVED, Thread.Status.SNOOZED)

# What both INSERTs write, in this order.
MESSAGE_FIELDS = ("thread", "seq", "author", "sender", "kind", "text", "data", "client_msg_id", "created_at")


class To(enum.Enum):
    """The new value of a field; each store renders every one of these."""

    SEQ = "the new message's seq"
    NOW = "the send time"
    PREVIEW = "the message preview, or '' on a sensitive thread"
    ZERO = "0"
    NULL = "empty"
    ONE_MORE = "one more than before"
    NOW_IF_EMPTY = "the send time unless already set"
    OPEN_IF_REOPENED = "open, if the status is one of REOPENED_BY_PATIENT"
    EMPTY_IF_REOPENED = "empty, if the status is one of REOPENED_BY_PATIENT"


@dataclass(frozen=True)
class Rule:
    field: str
    to: To
    authors: frozenset[str] = EVERYONE
    public_only: bool = False

    def applies(self, author: str, public: bool) -> bool:
        return author in self.authors and (public or not self.public_only)


def _by(*authors: str) -> frozenset[str]:
    return frozenset(authors)


COUNTER_RULES: tuple[Rule, ...] = (
    Rule("last_seq", To.SEQ),
    Rule("last_activity_at", To.NOW),
    Rule("last_public_seq", To.SEQ, public_only=True),
    Rule("last_message_preview", To.PREVIEW, public_only=True),
    # A patient writes: the staff have one more to read, the patient has read everything.
    Rule("staff_unread", To.ONE_MORE, _by(PATIENT)),
    Rule("patient_read_seq", To.SEQ, _by(PATIENT)),
    Rule("patient_delivered_seq", To.SEQ, _by(PATIENT)),
    Rule("patient_unread", To.ZERO, _by(PATIENT)),
    Rule("waiting_since", To.NOW_IF_EMPTY, _by(PATIENT)),
    Rule("status", To.OPEN_IF_REOPENED, _by(PATIENT)),
    Rule("snoozed_until", To.EMPTY_IF_REOPENED, _by(PATIENT)),
    # The staff write: they have read everything; a public reply answers the waiting patient.
    Rule("staff_read_seq", To.SEQ, _by(STAFF)),
    Rule("staff_delivered_seq", To.SEQ, _by(STAFF)),
    Rule("staff_unread", To.ZERO, _by(STAFF)),
    Rule("staff_read_at", To.NOW, _by(STAFF)),
    Rule("waiting_since", To.NULL, _by(STAFF), public_only=True),
    Rule("first_response_at", To.NOW_IF_EMPTY, _by(STAFF), public_only=True),
    # Whatever the patient can read and did not write is unread for them.
    Rule("patient_unread", To.ONE_MORE, _by(STAFF, SYSTEM, BOT), public_only=True),
)


def model_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """A concrete field of `model` (not a reverse relation), for its column and output type."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), name
    return field


def column(model: type[models.Model], name: str) -> str:
    return str(model_field(model, name).column)


def rules_for(author: str, public: bool) -> tuple[Rule, ...]:
    return tuple(rule for rule in COUNTER_RULES if rule.applies(author, public))


def orm_changes(author: str, public: bool, *, seq: int, now: datetime, preview: str) -> dict[str, Any]:
    """The rules as `Thread.objects.filter(pk=...).update(**changes)` keyword arguments."""
    reopened = [status.value for status in REOPENED_BY_PATIENT]

    def value(rule: Rule) -> Any:
        field = model_field(Thread, rule.field)
        match rule.to:
            case To.SEQ:
                return seq
            case To.NOW:
                return now
            case To.PREVIEW:
                return Case(When(sensitive=True, then=Value("")), default=Value(preview), output_field=field)
            case To.ZERO:
                return 0
            case To.NULL:
                return None
            case To.ONE_MORE:
                return F(rule.field) + 1
            case To.NOW_IF_EMPTY:
                return Coalesce(F(rule.field), Value(now, output_field=field), output_field=field)
            case To.OPEN_IF_REOPENED:
                return Case(When(status__in=reopened, then=Value(Thread.Status.OPEN.value)), default=F(rule.field), output_field=field)
            case To.EMPTY_IF_REOPENED:
                return Case(When(status__in=reopened, then=Value(None)), default=F(rule.field), output_field=field)
            case _:
                assert_never(rule.to)

    return {rule.field: value(rule) for rule in rules_for(author, public)}


@cache
def sql_set_list(author: str, public: bool) -> tuple[str, ...]:
    """The rules as `column = expression` items of an UPDATE's SET, with parameters %(now)s and %(preview)s.

    In PostgreSQL every SET expression reads the row as it was: `last_seq + 1` is the new seq.
    """
    reopened = ", ".join(f"'{status.value}'" for status in REOPENED_BY_PATIENT)
    status = column(Thread, "status")

    def expression(name: str, to: To) -> str:
        match to:
            case To.SEQ:
                return f"{column(Thread, 'last_seq')} + 1"
            case To.NOW:
                return "%(now)s"
            case To.PREVIEW:
                return f"CASE WHEN {column(Thread, 'sensitive')} THEN '' ELSE %(preview)s END"
            case To.ZERO:
                return "0"
            case To.NULL:
                return "NULL"
            case To.ONE_MORE:
                return f"{name} + 1"
            case To.NOW_IF_EMPTY:
                return f"COALESCE({name}, %(now)s)"
            case To.OPEN_IF_REOPENED:
                return f"CASE WHEN {status} IN ({reopened}) THEN '{Thread.Status.OPEN.value}' ELSE {name} END"
            case To.EMPTY_IF_REOPENED:
                return f"CASE WHEN {status} IN ({reopened}) THEN NULL ELSE {name} END"
            case _:
                assert_never(to)

    return tuple(f"{column(Thread, rule.field)} = {expression(column(Thread, rule.field), rule.to)}" for rule in rules_for(author, public))
