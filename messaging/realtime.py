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
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

try:
    from channels_redis.core import RedisChannelLayer
except ImportError:  # pragma: no cover - channels_redis is in requirements.txt
    RedisChannelLayer = None

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0  # seconds a broadcast may take before it is given up (and logged)


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


def send_to_groups(groups: list[str], payload: dict[str, Any]) -> None:
    """Fire and forget: a failure here must never undo or fail the committed change."""
    layer = get_channel_layer()
    if layer is None:
        return
    if _SenderLoop.serves(layer):
        _SenderLoop.run(_send_all(layer, groups, payload), payload)
    else:
        async_to_sync(_send_all)(layer, groups, payload)


async def _send_all(layer: Any, groups: list[str], payload: dict[str, Any]) -> None:
    for group in groups:
        try:
            await layer.group_send(group, {"type": "user.event", "payload": payload})
        except Exception:  # the database already holds the truth; clients re-fetch
            logger.exception("realtime: could not send %s to %s", payload.get("type"), group)


class _SenderLoop:
    """One event loop per process, in a daemon thread, for broadcasts from synchronous code.

    `async_to_sync` called outside an event loop starts a new loop (and thread) for every
    call, and channels_redis opens a new Redis connection for every loop: about 3 ms per
    group, several groups per message. This loop keeps its connection between sends.
    Only for channels_redis, whose connections are per loop by design; the in-memory layer
    (embedded default, tests) keeps using async_to_sync, whose queues belong to the
    consumers' loop.
    """

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _pid: int | None = None

    @staticmethod
    def serves(layer: Any) -> bool:
        if RedisChannelLayer is None or not isinstance(layer, RedisChannelLayer):
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        return False  # called from async code: let async_to_sync refuse as it always has

    @classmethod
    def _get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._pid != os.getpid():  # a forked worker starts its own
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-sender", daemon=True).start()
                cls._loop, cls._pid = loop, os.getpid()
            return cls._loop

    @classmethod
    def run(cls, coroutine: Coroutine[Any, Any, None], payload: dict[str, Any]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, cls._get())
        try:
            future.result(timeout=SEND_TIMEOUT)
        except Exception:  # a hung or failing Redis never fails the committed change
            future.cancel()
            logger.exception("realtime: could not send %s", payload.get("type"))
