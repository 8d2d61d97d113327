"""Delivery reports from SMS providers. A report we cannot verify, or about a message we never sent, is 403."""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications import services

# SMS.ru status codes: 103 delivered; 104–108 and 150 final failures (expired, rejected, unreachable…).
SMSRU_DELIVERED = {"103"}
SMSRU_FAILED = {"104", "105", "106", "107", "108", "150"}
TWILIO_DELIVERED = {"delivered"}
TWILIO_FAILED = {"failed", "undelivered"}


@csrf_exempt
@require_POST
def smsru_report(request: HttpRequest, secret: str) -> HttpResponse:
    """SMS.ru posts `data[]` lines 'sms_status\\n<id>\\n<status code>'. It cannot sign, so the URL carries a secret."""
    expected = settings.SMSRU_CALLBACK_SECRET
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        return HttpResponseForbidden("unknown sender")
    reports = []
    for entry in request.POST.getlist("data[]"):
        lines = entry.split("\n")
        if len(lines) >= 3 and lines[0] == "sms_status" and lines[2] in SMSRU_DELIVERED | SMSRU_FAILED:
            reports.append((lines[1], lines[2]))
    if not reports:
        return HttpResponse("100")  # SMS.ru's own test ping: acknowledged, nothing to store
    known = [
        services.delivery_report(
            provider="smsru", provider_message_id=sms_id, delivered=code in SMSRU_DELIVERED, error=f"SMS.ru status {code}"
        )
        for sms_id, code in reports
    ]
    if not any(known):
        return HttpResponseForbidden("unknown message")
    return HttpResponse("100")


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted POST parameters."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


@csrf_exempt
@require_POST
def twilio_report(request: HttpRequest) -> HttpResponse:
    token = settings.TWILIO_AUTH_TOKEN
    params = {key: request.POST.get(key, "") for key in request.POST}
    given = request.headers.get("X-Twilio-Signature", "")
    if not token or not hmac.compare_digest(given, twilio_signature(request.build_absolute_uri(), params, token)):
        return HttpResponseForbidden("bad signature")
    status = params.get("MessageStatus", "")
    if status not in TWILIO_DELIVERED | TWILIO_FAILED:
        return HttpResponse(status=204)  # queued/sent/sending: nothing final yet
    delivery = services.delivery_report(
        provider="twilio",
        provider_message_id=params.get("MessageSid", ""),
        delivered=status in TWILIO_DELIVERED,
        error=f"Twilio {status} {params.get('ErrorCode', '')}".strip(),
    )
    if delivery is None:
        return HttpResponseForbidden("unknown message")
    return HttpResponse(status=204)
