"""Reads for clinic screens."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from clinics.models import Clinic, Doctor, Service
from clinics.tenancy import clinic_roles


def clinic_get_public(*, slug: str) -> Clinic:
    """An active clinic by its portal address, with what its page shows, or Clinic.DoesNotExist."""
    clinic: Clinic = (
        Clinic.objects.filter(is_active=True, slug=slug)
        .prefetch_related(
            "working_hours",
            "specialties",
            Prefetch("services", queryset=Service.objects.filter(is_active=True).select_related("specialty")),
            Prefetch(
                "doctors",
                queryset=Doctor.objects.filter(is_active=True).prefetch_related("specialties", "services"),
            ),
        )
        .get()
    )
    return clinic


def clinics_public() -> QuerySet[Clinic]:
    """Active clinics with what the landing page shows: hours, specialties, doctors."""
    return (
        Clinic.objects.filter(is_active=True)
        .prefetch_related(
            "working_hours",
            "specialties",
            Prefetch("doctors", queryset=Doctor.objects.filter(is_active=True).prefetch_related("specialties")),
        )
        .order_by("name")
    )


def staff_clinics(*, user: Any) -> list[Clinic]:
    """The clinics a staff user works in (the admin's header and time zone), read once per request and user object."""
    cached = getattr(user, "_staff_clinics", None)
    if cached is None:
        cached = list(Clinic.objects.filter(pk__in=list(clinic_roles(user))).order_by("name"))
        if getattr(user, "is_authenticated", False):
            user._staff_clinics = cached
    return cached
