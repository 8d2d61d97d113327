"""API glue every app shares: the fields clients' values pass through, and the JSON form of every refusal.

Every refusal is a 4xx with `detail` a person can read and a stable `code`; the mapping of the domain's
own exceptions to those lives above the apps, in `clinic_crm.api.exception_handler`.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import client_input
from core.errors import one_line


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


def _within_bounds(check, value, **kwargs):
    try:
        check(value, **kwargs)
    except client_input.ClientInputError as exc:
        raise serializers.ValidationError(exc.message, code=exc.code) from None
    return value


class BoundedDateField(serializers.DateField):
    """A date a client gives, within client_input's bounds (year 9999 overflows once a period is added)."""

    def to_internal_value(self, value):
        return _within_bounds(client_input.date_in_bounds, super().to_internal_value(value))


class BoundedDateTimeField(serializers.DateTimeField):
    """A moment a client gives, within PLANNING_HORIZON_DAYS of now."""

    def to_internal_value(self, value):
        return _within_bounds(client_input.moment_in_bounds, super().to_internal_value(value))


class MomentField(BoundedDateTimeField):
    """A moment with its UTC offset. A bare '10:00' is refused: in which clinic's zone would it be?"""

    default_error_messages = {"naive": gettext_lazy("Give the time with its UTC offset, e.g. 2026-12-14T10:00:00+03:00.")}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return value


def validation_body(exc: DjangoValidationError) -> dict:
    """A service's ValidationError as the API answers it: the first field message as `detail`, every one under `errors`."""
    if hasattr(exc, "error_dict"):
        fields = {name: [str(m) for e in errors for m in e.messages] for name, errors in exc.error_dict.items()}
        first = next(iter(fields.values()))[0]
        return {"code": "invalid", "detail": first, "errors": fields}
    return {"code": "invalid", "detail": one_line(exc), "errors": {"non_field_errors": exc.messages}}


def too_large_body(request) -> dict:
    """Django refused a body over DATA_UPLOAD_MAX_MEMORY_SIZE; a JSON body is held to the parser's smaller limit."""
    is_json = (request.content_type or "").startswith("application/json")
    limit = settings.API_JSON_MAX_BYTES if is_json else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {"code": "too_large", "detail": client_input.too_large(limit).message}


def still_in_use_body(exc: ProtectedError | RestrictedError, context: dict) -> dict:
    """Why a delete was refused (the records still pointing at it), and what to do instead where there is a way."""
    queryset = getattr(context.get("view"), "queryset", None)
    model = queryset.model if queryset is not None else None
    referring = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    used_by = sorted({str(obj._meta.verbose_name_plural) for obj in referring})
    name = str(model._meta.verbose_name) if model is not None else _("this record")
    detail = _("Cannot delete %(name)s: %(used_by)s still refer to it.") % {"name": name, "used_by": ", ".join(used_by)}
    body: dict[str, Any] = {"code": "in_use", "detail": detail, "used_by": used_by}
    if model is not None and any(field.name == "is_active" for field in model._meta.fields):
        body["detail"] += " " + _("Deactivate it instead (is_active: false): its history stays and it takes no new bookings.")
        body["deactivate"] = {"is_active": False}
    return body


# --- Django's own refusals on /api/ paths, in the API's format ------------------------------------
# Unknown URLs, bad Host headers, oversized bodies, CSRF failures and crashes are answered by Django
# before or around DRF; a client of the API gets JSON from them too, never an HTML page.


def is_api_request(request) -> bool:
    return request.path_info.startswith("/api/")


def json_error(status_code: int, code: str, detail: str):
    from django.http import JsonResponse

    return JsonResponse({"code": code, "detail": detail}, status=status_code, json_dumps_params={"ensure_ascii": False})


def bad_request(request, exception, template_name="400.html"):
    from django.views import defaults

    if not is_api_request(request):
        return defaults.bad_request(request, exception, template_name)
    if isinstance(exception, RequestDataTooBig):
        return json_error(413, **too_large_body(request))
    return json_error(400, "bad_request", _("The request could not be understood."))


def permission_denied(request, exception, template_name="403.html"):
    from django.views import defaults

    if not is_api_request(request):
        return defaults.permission_denied(request, exception, template_name)
    return json_error(403, "permission_denied", str(exception) or _("You are not allowed to do this."))


def page_not_found(request, exception, template_name="404.html"):
    from django.views import defaults

    if not is_api_request(request):
        return defaults.page_not_found(request, exception, template_name)
    return json_error(404, "not_found", _("There is no such address in the API."))


def server_error(request, template_name="500.html"):
    from django.views import defaults

    if not is_api_request(request):
        return defaults.server_error(request, template_name)
    return json_error(500, "server_error", _("Something went wrong on our side; it has been logged."))


def csrf_failure(request, reason=""):
    from django.views.csrf import csrf_failure as django_csrf_failure

    if not is_api_request(request):
        return django_csrf_failure(request, reason)
    return json_error(403, "csrf_failed", _("CSRF check failed: reload the page and try again."))
