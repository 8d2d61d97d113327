"""The OpenAPI schema says every refusal an operation can answer, not only its success.

drf-spectacular documents the 2xx an operation returns; the 4xx come from machinery every view
shares (parsing, authentication, CSRF, permissions, lookups, pagination), so they are added here
from what the view is wired with, once, rather than repeated on every view. Refusals particular
to an operation (a taken slot, a throttle, a conflict) are declared on the view with `refusals`.
The suite runs schemathesis against this schema (tests/platform/test_api_fuzz.py): an answer
with a code the schema does not list fails it.
"""

from __future__ import annotations

from django.db import models
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions, serializers


class ErrorOut(serializers.Serializer):
    """Every 4xx body (clinic_crm.api.exception_handler): a stable code and a sentence for a person."""

    code = serializers.CharField(help_text="Stable machine-readable reason, e.g. 'invalid', 'not_found', 'slot_taken'")
    detail = serializers.CharField(help_text="What went wrong, in the caller's language")
    errors = serializers.DictField(  # type: ignore[assignment]  # a declared field, not Serializer.errors: the metaclass takes it
        child=serializers.JSONField(),
        required=False,
        help_text="Per field, its messages; a list field's or a nested object's errors nest by index or name (validation refusals only)",
    )


BAD_REQUEST = "The request is malformed, a value is invalid, or a rule refuses the change; `errors` names the fields."
FORBIDDEN = "Not signed in, no CSRF token on a signed-in write, or the caller may not do this."
NOT_FOUND = "No such object among those the caller may see (or no such page of a list)."
IN_USE = "Other records (for example visits) still refer to it: nothing is deleted."
UNSUPPORTED_MEDIA_TYPE = "The body is not in a content type this operation reads."


def refusals(**codes: str) -> dict[int, OpenApiResponse]:
    """`@extend_schema(responses={200: Out, **refusals(**{"409": "…"})})`: refusals with the error body."""
    return {int(code): OpenApiResponse(response=ErrorOut, description=description) for code, description in codes.items()}


# A wall-clock time of day with no offset ("09:00", "18:30:00"): opening hours, shifts. OpenAPI's
# "time" format is RFC 3339's full-time, which requires an offset, so it would be a false promise.
WALL_CLOCK_TIME = {
    "type": "string",
    "format": "partial-time",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
}


# With a 429: how many seconds until the caller may try again.
RETRY_AFTER = OpenApiParameter(
    "Retry-After", int, OpenApiParameter.HEADER, response=[429], description="Seconds until a new attempt may succeed"
)


class AutoSchema(openapi.AutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            schema = {**schema, **WALL_CLOCK_TIME}
        return schema

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error = {"application/json": {"schema": self.resolve_serializer(ErrorOut, "response").ref}}
        responses = operation["responses"]
        for code, description in self._shared_refusals(operation):
            responses.setdefault(code, {"description": description, "content": error})
        return operation

    def _shared_refusals(self, operation: dict) -> list[tuple[str, str]]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        found = []
        # Any write can be refused by a service's rule (django ValidationError, answered as 400).
        if has_body or self.method not in permissions.SAFE_METHODS or any(p["in"] == "query" for p in parameters):
            found.append(("400", BAD_REQUEST))
        # DRF answers a missing session with 403 (SessionAuthentication sends no WWW-Authenticate),
        # and a signed-in write without the CSRF token with 403 even where anyone may call.
        open_to_all = all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())
        if not open_to_all or self.method not in permissions.SAFE_METHODS:
            found.append(("403", FORBIDDEN))
        # A page past the end (?page=9) or a cursor that was never issued is a 404 in DRF's paginators.
        if any(p["in"] == "path" for p in parameters) or (self._is_list_view() and self._get_paginator() is not None):
            found.append(("404", NOT_FOUND))
        if self.method == "DELETE" and self._protected_by_others():
            found.append(("409", IN_USE))
        if has_body:
            found.append(("415", UNSUPPORTED_MEDIA_TYPE))
        return found

    def _protected_by_others(self) -> bool:
        queryset = getattr(self.view, "queryset", None)
        if queryset is None:
            return False
        return any(relation.on_delete in (models.PROTECT, models.RESTRICT) for relation in queryset.model._meta.related_objects)
