"""How fast one person may send: a fixed one-minute window per user, counted in the shared cache.

The counter is one Redis command in production (a Lua script: INCR, and EXPIRE when it
created the key); the cache API's add + incr take three round trips, and a counter runs
twice for every message (this window and the inbox version, messaging.services.broadcast).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils import timezone
from django.utils.translation import gettext as _

SEND_LIMIT_PER_MINUTE = 30


class SendingTooFast(Exception):
    """More than SEND_LIMIT_PER_MINUTE messages from one person in a minute."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(_("You are sending messages too fast. Wait %(seconds)s s and try again.") % {"seconds": retry_after})


@dataclass(frozen=True)
class SendWindow:
    """One user's message count in the current minute, after counting this attempt."""

    key: str
    value: int
    retry_after: int

    @classmethod
    def count(cls, user: Any) -> SendWindow:
        now = int(timezone.now().timestamp())
        key = f"msg-rate:{user.pk}:{now // 60}"
        return cls(key=key, value=cache_increment(key, timeout=90), retry_after=60 - now % 60 or 1)

    @property
    def over(self) -> bool:
        return self.value > SEND_LIMIT_PER_MINUTE

    def uncount(self) -> None:
        """The attempt turned out not to count (a resend, or refused for consent)."""
        with suppress(ValueError):  # the window has passed
            cache.decr(self.key)


def throttle(user: Any) -> None:
    """Count this attempt; SendingTooFast past the limit."""
    window = SendWindow.count(user)
    if window.over:
        raise SendingTooFast(retry_after=window.retry_after)


_INCREMENT_SCRIPT = """
local value = redis.call('INCR', KEYS[1])
if value == 1 and ARGV[1] ~= '' then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return value
"""
_scripts_by_cache_client: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()


def cache_increment(key: str, *, timeout: int | None) -> int:
    """Add one to a counter in the cache, creating it (with `timeout`) if missing; returns the new value.

    Values stay readable through `cache.get`.
    """
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache
        script = _scripts_by_cache_client.get(client)
        if script is None:  # building a redis.Redis costs more than the round trip: one per cache client
            script = _scripts_by_cache_client[client] = client.get_client(write=True).register_script(_INCREMENT_SCRIPT)
        return int(script(keys=[backend.make_and_validate_key(key)], args=["" if timeout is None else timeout]))
    backend.add(key, 0, timeout=timeout)
    try:
        return int(backend.incr(key))
    except ValueError:  # evicted between add and incr
        backend.set(key, 1, timeout=timeout)
        return 1
