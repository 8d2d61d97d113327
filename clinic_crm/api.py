"""The API's exception handler: the domain's own refusals (consent, codes, throttling, a taken slot) as JSON.

It lives above the apps because it names their exceptions; the shared JSON forms are in `core.api`.
"""

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.services import LoginCodeError
from appointments.api import slots_json
from appointments.services import SlotTaken
from core.api import still_in_use_body, too_large_body, validation_body
from core.pool import busy_api_response, is_pool_timeout
from messaging.services import SendingTooFast
from patients.services import ConsentOutdated, ConsentRequired


def exception_handler(exc, context):
    if is_pool_timeout(exc):
        return busy_api_response(context["request"])
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
        alternatives = slots_json(exc.clinic, exc.alternatives) if exc.clinic else []
        return Response({"code": exc.code, "detail": str(exc), "alternatives": alternatives}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        return Response(validation_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response(too_large_body(context["request"]), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        return Response(still_in_use_body(exc, context), status=status.HTTP_409_CONFLICT)
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
