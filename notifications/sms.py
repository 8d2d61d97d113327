"""SMS providers behind one small interface.

Each provider turns (phone, text) into the provider's message id or raises
SmsError. `retryable` tells the caller whether trying again can help (timeouts,
5xx) or not (an invalid number, a rejected account). `receives_replies` says
whether the provider passes a patient's answer back to us: only then does the
confirm request invite one ("Reply 1 to confirm…").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)


class SmsError(Exception):
    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class SmsProvider(Protocol):
    name: str
    receives_replies: ClassVar[bool]

    def send(self, *, phone: str, text: str) -> str: ...


@dataclass
class ConsoleSms:
    """The embedded default: the message goes to the log, nowhere else (so nobody can answer it)."""

    name: str = "console"
    receives_replies: ClassVar[bool] = False

    def send(self, *, phone: str, text: str) -> str:
        logger.warning("SMS to %s: %s", phone, text)
        return f"console-{abs(hash((phone, text))) % 10**12}"


def _post(url: str, **kwargs) -> httpx.Response:
    try:
        response = httpx.post(url, timeout=settings.PROVIDER_TIMEOUT_SECONDS, **kwargs)
    except httpx.TimeoutException as exc:
        raise SmsError(f"timeout: {exc}", retryable=True) from exc
    except httpx.TransportError as exc:
        raise SmsError(f"network error: {exc}", retryable=True) from exc
    if response.status_code >= 500:
        raise SmsError(f"provider error HTTP {response.status_code}", retryable=True)
    return response


@dataclass
class SmsRu:
    """SMS.ru HTTP API (`/sms/send`, JSON answer, status_code 100 = accepted).

    Its callbacks report message statuses and call checks only, not incoming SMS: no replies.
    """

    api_id: str
    sender: str = ""
    url: str = "https://sms.ru/sms/send"
    name: str = "smsru"
    receives_replies: ClassVar[bool] = False

    def send(self, *, phone: str, text: str) -> str:
        data = {"api_id": self.api_id, "to": phone.lstrip("+"), "msg": text, "json": 1}
        if self.sender:
            data["from"] = self.sender
        response = _post(self.url, data=data)
        try:
            body = response.json()
        except ValueError as exc:
            raise SmsError(f"unreadable answer HTTP {response.status_code}", retryable=True) from exc
        if body.get("status") != "OK":
            raise SmsError(f"rejected: {body.get('status_text', body.get('status_code'))}", retryable=False)
        per_number: dict[str, Any] = next(iter((body.get("sms") or {}).values()), {})
        if per_number.get("status") != "OK":
            raise SmsError(f"rejected number: {per_number.get('status_text', per_number.get('status_code'))}", retryable=False)
        return str(per_number.get("sms_id", ""))


@dataclass
class Twilio:
    """Twilio Messages API (HTTP basic auth with the account SID and token); replies come to appointments.sms_webhook.twilio_reply."""

    account_sid: str
    auth_token: str
    from_number: str
    base_url: str = "https://api.twilio.com/2010-04-01"
    name: str = "twilio"
    receives_replies: ClassVar[bool] = True

    def send(self, *, phone: str, text: str) -> str:
        response = _post(
            f"{self.base_url}/Accounts/{self.account_sid}/Messages.json",
            data={"To": phone, "From": self.from_number, "Body": text},
            auth=(self.account_sid, self.auth_token),
        )
        if response.status_code == 429:
            raise SmsError("rate limited by provider", retryable=True)
        if response.status_code >= 400:
            try:
                detail = response.json().get("message", "")
            except ValueError:
                detail = ""
            raise SmsError(f"rejected HTTP {response.status_code}: {detail}", retryable=False)
        return str(response.json()["sid"])


def sms_provider() -> SmsProvider:
    """The provider chosen by settings.SMS_PROVIDER."""
    match settings.SMS_PROVIDER:
        case "console":
            return ConsoleSms()
        case "smsru":
            return SmsRu(api_id=settings.SMSRU_API_ID, sender=settings.SMSRU_SENDER, url=settings.SMSRU_API_URL)
        case "twilio":
            return Twilio(
                account_sid=settings.TWILIO_ACCOUNT_SID,
                auth_token=settings.TWILIO_AUTH_TOKEN,
                from_number=settings.TWILIO_FROM_NUMBER,
            )
    raise ValueError(f"Unknown SMS_PROVIDER {settings.SMS_PROVIDER!r}: use console, smsru or twilio.")


PROVIDERS: dict[str, type] = {"console": ConsoleSms, "smsru": SmsRu, "twilio": Twilio}


def sms_replies_supported() -> bool:
    """Whether the configured provider passes patients' replies back (decided at dispatch, no credentials needed)."""
    provider = PROVIDERS.get(settings.SMS_PROVIDER)
    return bool(provider and getattr(provider, "receives_replies", False))
