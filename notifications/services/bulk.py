"""Writing many outbox rows at a fixed cost: the batches of dispatch and sending."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import connection, models

from notifications.models import Delivery


def save_grouped(model: type[models.Model], rows: Iterable[models.Model], fields: list[str], **only: Any) -> None:
    """Write `fields` of many rows with one UPDATE per distinct set of new values.

    Django's bulk_update builds a CASE expression per field and row in Python, which
    cost more than everything else in a batch put together (bench/notifications.py). A batch's
    rows mostly get the same values (dispatched at one moment, sent by one provider),
    so grouping makes one or two plain UPDATEs. `only`: conditions a row must still meet.
    """
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, name) for name in fields)].append(row.pk)
    for values, pks in groups.items():
        model._base_manager.filter(pk__in=pks, **only).update(**dict(zip(fields, values, strict=True)))


def save_message_ids(deliveries: list[Delivery]) -> None:
    """The provider's id of each delivery (all different) in one UPDATE … CASE, written as SQL for the reason above."""
    pairs = [(d.pk, d.provider_message_id) for d in deliveries if d.provider_message_id]
    if not pairs:
        return
    table, when = Delivery._meta.db_table, " ".join(["WHEN %s THEN %s"] * len(pairs))
    params = [value for pair in pairs for value in pair] + [pk for pk, _id in pairs]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET provider_message_id = CASE id {when} END WHERE id IN ({', '.join(['%s'] * len(pairs))})",
            params,
        )
