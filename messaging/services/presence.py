"""Presence: open sockets (who is online) and who is looking at a thread (the staff's soft lock)."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone

from messaging.models import SocketConnection
from messaging.selectors import REPLY_TTL, VIEW_TTL, alive_since, viewers_key, viewers_of


def socket_opened(*, user_id: int, channel_name: str) -> None:
    """Open sockets are rows: any process can ask whether a person is online (see selectors.user_is_online)."""
    now = timezone.now()
    SocketConnection.objects.update_or_create(channel_name=channel_name, defaults={"user_id": user_id, "seen_at": now, "connected_at": now})


def socket_seen(*, channel_name: str) -> None:
    SocketConnection.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


def socket_closed(*, channel_name: str) -> None:
    SocketConnection.objects.filter(channel_name=channel_name).delete()


def sockets_purge_stale() -> int:
    """Rows of a crashed server: three missed heartbeats."""
    deleted, _count = SocketConnection.objects.filter(seen_at__lt=alive_since()).delete()
    return deleted


async def thread_view_mark(
    *, thread_id: int, user_id: int, name: str, viewing: bool = True, replying: bool | None = None
) -> dict[str, Any]:
    """Refresh (or drop) one staff member's mark on a thread (the soft lock); returns the current viewers.

    Async: the socket consumer calls it on its event loop, and the cache's async API needs no
    thread of its own. Read-modify-write in the cache: two simultaneous marks may lose one
    until the next refresh a few seconds later. That is acceptable for a soft lock, not for data.
    """
    now = timezone.now().timestamp()
    marks: dict[int, dict[str, Any]] = await cache.aget(viewers_key(thread_id)) or {}
    marks = {uid: m for uid, m in marks.items() if m["until"] > now}  # expired marks are dropped for good
    if viewing:
        mark = marks.get(user_id, {"name": name})
        mark["until"] = now + VIEW_TTL
        if replying is not None:
            mark["replying_until"] = now + REPLY_TTL if replying else 0
        marks[user_id] = mark
    else:
        marks.pop(user_id, None)
    await cache.aset(viewers_key(thread_id), marks, timeout=VIEW_TTL * 2)
    return viewers_of(marks, now=now)
