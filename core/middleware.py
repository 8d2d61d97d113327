"""Refuse a NUL character in what a request carries as text: its path, query string and form fields.

DRF's and Django's form CharFields already refuse NUL, but views, the admin's search
(?q=), filters and the portal's plain forms also read request.GET / request.POST
directly, and PostgreSQL answers a NUL in any query parameter with an error (a 500).
Checking here covers every such reader at once. JSON bodies are checked by
core.parsers.JSONParser, socket frames by the consumer, both through client_input.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from core import client_input
from core.api import is_api_request, json_error

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _carries_nul(request: HttpRequest) -> bool:
    if client_input.NUL in request.path_info:
        return True
    parts = [request.GET]
    if request.method == "POST" and request.content_type in FORM_TYPES:
        parts.append(request.POST)
        if any(client_input.NUL in (upload.name or "") for _field, uploads in request.FILES.lists() for upload in uploads):
            return True
    return any(
        client_input.NUL in key or any(client_input.NUL in value for value in values) for part in parts for key, values in part.lists()
    )


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _carries_nul(request):
            refusal = client_input.nul_refused()
            if is_api_request(request):
                return json_error(400, refusal.code, refusal.message)
            return HttpResponseBadRequest(refusal.message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
