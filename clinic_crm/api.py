"""API error format: every refusal is a 4xx with `detail` a person can read and a stable `code`."""

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.services import LoginCodeError
from appointments.services import SlotTaken
from messaging.services import SendingTooFast
from patients.services import ConsentOutdated, ConsentRequired


@extend_schema_field(OpenApiTypes.STR)
class E164Field(serializers.Field):
    """A phone number out as E.164 ('+79161234567'), whatever the display format is."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)  # no number on file is null, and the schema says so
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value.as_e164 if value else None

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        return value or None


def _validation_body(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        fields = {name: [str(m) for e in errors for m in e.messages] for name, errors in exc.error_dict.items()}
        first = next(iter(fields.values()))[0]
        return {"code": "invalid", "detail": first, "errors": fields}
    return {"code": "invalid", "detail": " ".join(exc.messages), "errors": {"non_field_errors": exc.messages}}


def exception_handler(exc, context):
    if isinstance(exc, ConsentRequired):
        return Response(
            {"code": "consent_required", "detail": str(exc), "clinic": exc.clinic.slug},
            status=status.HTTP_403_FORBIDDEN,
        )
    if isinstance(exc, ConsentOutdated):
        return Response({"code": "consent_outdated", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, LoginCodeError):
        code = status.HTTP_429_TOO_MANY_REQUESTS if exc.code in ("rate_limited", "locked") else status.HTTP_400_BAD_REQUEST
        body = {"code": exc.code, "detail": exc.message}
        headers = {}
        if exc.attempts_left is not None:
            body["attempts_left"] = exc.attempts_left
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        return Response(body, status=code, headers=headers)
    if isinstance(exc, SendingTooFast):
        return Response(
            {"code": "too_fast", "detail": str(exc)},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, SlotTaken):
        from appointments.api import slots_json

        alternatives = slots_json(exc.clinic, exc.alternatives) if exc.clinic else []
        return Response({"code": exc.code, "detail": str(exc), "alternatives": alternatives}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        # A delete that other records still point at (a doctor's or a service's visits): refused,
        # nothing deleted, rather than a 500.
        return Response(
            {"code": "in_use", "detail": _("This is still in use by other records (for example visits), so it cannot be deleted.")},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, ObjectDoesNotExist):
        return Response({"code": "not_found", "detail": _("Not found.")}, status=status.HTTP_404_NOT_FOUND)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(response.data["detail"], "code", "error"))
    elif response is not None and response.status_code == 400:
        fields = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        first = next(iter(fields.values()), [""])
        response.data = {"code": "invalid", "detail": str(first[0] if isinstance(first, list) and first else first), "errors": fields}
    return response


def not_found(request, exception=None):
    """handler404: an API path no route matches (/api/threads/null/) answers in the API's error
    format, as the schema promises; pages keep the site's 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": _("Not found.")}, status=404)
    return page_not_found(request, exception)
