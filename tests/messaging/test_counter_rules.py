"""The thread's counter rules are declared once (messaging.services.counters) and both stores render all of them.

The behaviour of each rule is asserted through send_message in test_send.py, on SQLite (the ORM
rendering) and on PostgreSQL (the SQL rendering); these check that neither rendering drops or adds one.
"""

from datetime import UTC, datetime

import pytest

from messaging.models import Message, Thread
from messaging.services import counters

AUTHORS = [Message.Author.PATIENT, Message.Author.STAFF, Message.Author.SYSTEM, Message.Author.BOT]


@pytest.mark.parametrize("public", [True, False])
@pytest.mark.parametrize("author", AUTHORS)
def test_both_renderings_change_exactly_the_declared_fields(author, public):
    declared = [rule.field for rule in counters.rules_for(author, public)]
    orm = counters.orm_changes(author, public, seq=5, now=datetime(2026, 1, 1, tzinfo=UTC), preview="Hello")
    sql = [item.split(" = ", 1)[0] for item in counters.sql_set_list(author, public)]
    assert sorted(orm) == sorted(set(declared))
    assert sorted(sql) == sorted(counters.column(Thread, name) for name in set(declared))
    assert len(declared) == len(set(declared)), "two rules for one field would make one rendering pick either"


def test_every_kind_of_change_is_used_so_the_suite_runs_its_renderings_on_both_databases():
    assert {rule.to for rule in counters.COUNTER_RULES} == set(counters.To)


def test_the_message_columns_are_the_models():
    assert set(counters.MESSAGE_FIELDS) <= {field.name for field in Message._meta.concrete_fields}
