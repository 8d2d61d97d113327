"""Channels adapter of the tenancy layer: what a socket user may subscribe to."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.db import models

from clinics.tenancy import is_staff_member


@database_sync_to_async
def socket_user_kind(user: Any) -> str | None:
    """'staff', 'patient' or None (refuse the socket)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if is_staff_member(user):
        return "staff"
    from patients.selectors import patient_for_user

    return "patient" if patient_for_user(user) is not None else None


@database_sync_to_async
def socket_can_see(user: Any, model: type[models.Model], pk: Any) -> bool:
    """May this staff user receive events about row `pk` of `model`?"""
    return model.objects.visible_to(user).filter(pk=pk).exists()
