"""The provider's webhook for a patient's SMS to our number: applied to their visit (appointments.sms_replies)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from appointments.sms_replies import sms_reply_handle
from notifications.views import twilio_signed_params


@csrf_exempt
@require_POST
def twilio_reply(request: HttpRequest) -> HttpResponse:
    """A patient's SMS to our Twilio number ("1", "нет"…): applied to their visit, answered in TwiML (Twilio texts it back)."""
    params = twilio_signed_params(request)
    if params is None:
        return HttpResponseForbidden("bad signature")
    reply = sms_reply_handle(
        provider="twilio", phone=params.get("From", ""), text=params.get("Body", ""), provider_message_id=params.get("MessageSid", "")
    )
    message = f"<Message>{escape(reply.answer)}</Message>" if reply.answer else ""
    return HttpResponse(f'<?xml version="1.0" encoding="UTF-8"?><Response>{message}</Response>', content_type="text/xml; charset=utf-8")
