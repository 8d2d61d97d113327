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

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

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


def send_to_groups(groups: list[str], payload: dict[str, Any]) -> None:
    """Fire and forget: a failure here must never undo or fail the committed change."""
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, {"type": "user.event", "payload": payload})
        except Exception:  # the database already holds the truth; clients re-fetch
            logger.exception("realtime: could not send %s to %s", payload.get("type"), group)
