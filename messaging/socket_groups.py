"""Who a socket is and which realtime groups it joins: the same boundaries as Thread's policy.

Moved here from the tenancy layer, which must not know messaging's group names (it is below it).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from clinics.models import Doctor
from clinics.tenancy import FRONT_DESK, clinic_roles, is_staff_member, portal_holder_id
from messaging import realtime
from patients.selectors import patient_for_user


@database_sync_to_async
def socket_user_kind(user: Any) -> str | None:
    """'staff', 'patient' or None (refuse the socket)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if is_staff_member(user):
        return "staff"
    return "patient" if patient_for_user(user) is not None else None


@database_sync_to_async
def socket_groups(user: Any) -> list[str]:
    """The realtime groups a socket joins.

    Front desk hears every thread of its clinics, a doctor the threads addressed to
    them, a patient their family's threads.
    """
    holder_id = portal_holder_id(user)
    if holder_id is not None:
        return [realtime.family_group(holder_id)]
    groups = [realtime.front_desk_group(clinic_id) for clinic_id, role in clinic_roles(user).items() if role in FRONT_DESK]
    doctor_clinics = [clinic_id for clinic_id, role in clinic_roles(user).items() if role not in FRONT_DESK]
    doctors = Doctor.objects.filter(user=user, clinic_id__in=doctor_clinics).values_list("pk", flat=True)
    groups += [realtime.doctor_group(pk) for pk in doctors]
    return groups
