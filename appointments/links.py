"""The signed link in a visit reminder: confirm or cancel from an SMS without signing in."""

from __future__ import annotations

from datetime import timedelta

from django.core import signing

from appointments.models import Visit

VISIT_LINK_SALT = "appointments.visit-link"


def visit_link_token(visit_id: int) -> str:
    """The signed part of the confirm/cancel link in a reminder: no sign-in needed from an SMS."""
    return signing.dumps(visit_id, salt=VISIT_LINK_SALT)


def visit_from_link(*, token: str) -> Visit | None:
    """The visit a reminder's signed link points to, or None if the link was altered or is older than 30 days."""
    try:
        visit_id = signing.loads(token, salt=VISIT_LINK_SALT, max_age=timedelta(days=30))
    except signing.BadSignature:
        return None
    return (
        Visit.objects.select_related("clinic", "doctor", "service", "patient__guardian__user", "patient__user", "branch")
        .filter(pk=visit_id)
        .first()
    )
