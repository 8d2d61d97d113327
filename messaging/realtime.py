"""Who hears about a thread over the socket, and how events are sent.

Sockets join groups when they connect (messaging.consumers); services send to
the groups of a thread after commit. The groups mirror the tenancy policy of
Thread: the clinic's front desk, the doctor the thread is addressed to, the
patient's family (through the account holder). Private notes and staff events
go to staff groups only.

The socket is best-effort: a channel layer drops events past its capacity, so
every event carries what a client needs to notice a gap (`seq`) and re-fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging import redis_fanout
from messaging.redis_fanout import SEND_TIMEOUT

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def front_desk_group(clinic_id: int) -> str:
    return f"clinic.{clinic_id}.front"


def doctor_group(doctor_id: int) -> str:
    return f"doctor.{doctor_id}"


def family_group(holder_id: int) -> str:
    return f"family.{holder_id}"


def staff_groups(thread: Any) -> list[str]:
    groups = [front_desk_group(thread.clinic_id)]
    if thread.doctor_id:
        groups.append(doctor_group(thread.doctor_id))
    return groups


def patient_groups(thread: Any) -> list[str]:
    patient = thread.patient
    return [family_group(patient.guardian_id or patient.pk)]


Event = tuple[list[str], dict[str, Any]]  # (groups, payload): what one broadcast sends where


def send_on_commit(events: Sequence[Event] | Callable[[], Sequence[Event]]) -> None:
    """The one way services broadcast: after the surrounding transaction commits, so no client
    hears of a change that rolled back. Pass a callable to build the payloads only then."""
    transaction.on_commit(lambda: send_events(events() if callable(events) else events))


def send_events(events: Sequence[Event]) -> None:
    """Several (groups, payload) at once, e.g. a message's staff and patient versions: one broadcast.

    Fire and forget: a failure here is logged, never raised, so it cannot fail a committed change.
    The payload travels as JSON text, encoded once here: a socket server relays it as it is
    instead of encoding it again for every socket (messaging.consumers.user_event).
    """
    layer = get_channel_layer()
    if layer is None:
        return
    sends = [(group, layer_message(payload)) for groups, payload in events for group in groups]
    if _in_async_code():  # async_to_sync refuses here, as it always has: async code awaits asend_events
        async_to_sync(_send_all)(layer, sends)
    elif redis_fanout.serves(layer):
        redis_fanout.send(layer, sends)
    elif redis_fanout.is_redis_layer(layer):
        _LoopThread.run(_send_all(layer, sends))
    else:  # the in-memory layer (the embedded default, tests)
        async_to_sync(_send_all)(layer, sends)


def _in_async_code() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _LoopThread:
    """One event loop per process in a daemon thread: the layer's public group_send from synchronous code.

    For a channels_redis version the fast path does not know. async_to_sync from a plain thread
    makes a new event loop per call, and channels_redis keeps its connections per loop: every
    broadcast would connect anew.
    """

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _pid = 0

    @classmethod
    def run(cls, coroutine: Any) -> None:
        loop = cls._loop
        if loop is None or cls._pid != os.getpid():
            with cls._lock:
                if cls._loop is None or cls._pid != os.getpid():  # a forked worker starts its own
                    cls._loop, cls._pid = asyncio.new_event_loop(), os.getpid()
                    threading.Thread(target=cls._loop.run_forever, name="realtime-loop", daemon=True).start()
                loop = cls._loop
        try:
            asyncio.run_coroutine_threadsafe(coroutine, loop).result(SEND_TIMEOUT)
        except Exception:  # the database already holds the truth; clients re-fetch
            logger.exception("realtime: broadcast did not finish in %s s", SEND_TIMEOUT)


async def asend_events(events: Sequence[Event]) -> None:
    """send_events for async code (the socket consumer): the layer's own group_send on the running loop."""
    layer = get_channel_layer()
    if layer is not None:
        await _send_all(layer, [(group, layer_message(payload)) for groups, payload in events for group in groups])


def layer_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The channel layer message for a payload: handled by RealtimeConsumer.user_event."""
    if "render" in payload:  # rendered by each socket server for its sockets (messaging.payloads.message_event_stub)
        return {"type": "user.event", "render": payload["render"], "event": payload.get("type")}
    return {"type": "user.event", "text": json.dumps(payload), "event": payload.get("type")}


async def _send_all(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    for group, message in sends:
        try:
            await layer.group_send(group, message)
        except Exception:  # the database already holds the truth; clients re-fetch
            logger.exception("realtime: could not send %s to %s", message["event"], group)
