"""The two channels behind one interface: `send(destination, subject, text, key) -> provider message id`.

SMS goes through the HTTP adapters of notifications.sms (SMS.ru, Twilio, console);
e-mail through Django's e-mail backend (console by default, any provider via
django-anymail). Errors come back as SmsError with `retryable` set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMessage

from notifications.sms import SmsError, sms_provider

logger = logging.getLogger(__name__)


class Provider(Protocol):
    name: str

    def send(self, *, destination: str, subject: str, text: str, key: str) -> str: ...


@dataclass
class SmsChannel:
    name: str

    def send(self, *, destination: str, subject: str, text: str, key: str) -> str:
        return sms_provider().send(phone=destination, text=text)


@dataclass
class EmailChannel:
    name: str = "email"

    def send(self, *, destination: str, subject: str, text: str, key: str) -> str:
        message = EmailMessage(subject=subject, body=text, to=[destination], headers={"X-Idempotency-Key": key})
        try:
            message.send()
        except OSError as exc:  # SMTP and network errors: the next attempt may get through
            raise SmsError(f"e-mail not sent: {exc}", retryable=True) from exc
        except AnymailRecipientsRefused as exc:  # the provider refused the address (bounced before, invalid)
            raise SmsError(f"address refused by the e-mail provider: {_first_line(exc)}", retryable=False) from exc
        except AnymailError as exc:  # the provider's API answered an error: worth another try only if it was on its side
            status = exc.status_code
            retryable = status is None or status >= 500 or status == 429
            raise SmsError(f"e-mail provider error (HTTP {status or '—'}): {_first_line(exc)}", retryable=retryable) from exc
        status = getattr(message, "anymail_status", None)  # set by django-anymail backends
        return (status.message_id if status and status.message_id else "") or key


def _first_line(exc: Exception) -> str:
    """The provider's own message (anymail's str() also dumps the whole response)."""
    return str(exc.args[0]).splitlines()[0] if exc.args else type(exc).__name__


def provider_for(channel: str) -> Provider:
    if channel == "sms":
        return SmsChannel(name=settings.SMS_PROVIDER)
    return EmailChannel()
