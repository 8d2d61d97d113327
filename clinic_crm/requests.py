"""Facts about the HTTP request that services record (consent and audit rows)."""

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR as set by the server; the proxy in front is trusted to set it right."""
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:400]
