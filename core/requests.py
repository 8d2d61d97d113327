"""Facts about the HTTP request that services record (consent and audit rows)."""

from typing import Any

from django.http import HttpRequest


class PortalRequest(HttpRequest):
    """A request past `patients.views.patient_required`, which puts the signed-in person on it (for the type checker).

    `patient` is a patients.models.Patient; core sits below patients and cannot name it.
    """

    patient: Any


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR as set by the server; the proxy in front is trusted to set it right."""
    return request.META.get("REMOTE_ADDR") or None


def _header_text(request: HttpRequest, name: str, limit: int) -> str:
    # Headers we store are text columns, and PostgreSQL refuses NUL in text.
    return request.META.get(name, "").replace("\x00", "")[:limit]


def user_agent(request: HttpRequest) -> str:
    return _header_text(request, "HTTP_USER_AGENT", 400)


def referrer(request: HttpRequest) -> str:
    """Where a visitor came from (kept for attribution)."""
    return _header_text(request, "HTTP_REFERER", 500)
