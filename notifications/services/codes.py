"""Sign-in codes through the outbox: urgent, to the very address asked for, the code itself only in the cache.

accounts issues a code and returns it (accounts.services.login_code_issue); whoever asked for it
hands it here (code_notify), so accounts never imports the outbox above it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications import kinds
from notifications.models import Delivery, Notification
from notifications.sms import SmsError

if TYPE_CHECKING:
    from accounts.models import LoginCode

# What a stored sign-in code text shows instead of the code; the code goes in at the moment of sending.
CODE_MASK = "••••••"


def _code_key(login_code_id: int) -> str:
    return f"login-code:{login_code_id}"


def _code_still_wanted(login_code: LoginCode, now: datetime) -> bool:
    return login_code.used_at is None and not login_code.superseded and login_code.expires_at > now


def code_notify(*, login_code: LoginCode, code: str) -> Notification:
    """Send a one-time code through the outbox: urgent (no quiet hours), dispatched at once rather than by the sweep.

    The plain code lives only in the cache, for the code's lifetime: the outbox
    and the admin show the text with the code masked.
    """
    from notifications.tasks import dispatch_notifications

    lifetime = max(1, int((login_code.expires_at - timezone.now()).total_seconds()))
    with transaction.atomic():
        cache.set(_code_key(login_code.pk), code, timeout=lifetime)
        notification = Notification.objects.create(
            kind=Notification.Kind.CODE, login_code=login_code, recipient=login_code.user, urgent=True, reason="code"
        )
        transaction.on_commit(lambda: dispatch_notifications.delay([notification.pk]))
    return notification


def code_text_to_send(delivery: Delivery) -> str:
    """The stored text, with a sign-in code put in at the last moment (SmsError if it has left the cache meanwhile)."""
    if not delivery.notification.login_code_id:
        return delivery.text
    code = cache.get(_code_key(delivery.notification.login_code_id))
    if code is None:
        raise SmsError("the code is no longer available (expired); the person can request a new one", retryable=False)
    return str(delivery.text).replace(CODE_MASK, code)


def _text(notification: Notification, for_patient: bool) -> tuple[str, str]:
    return _("Your sign-in code"), _("Your code: %(code)s. Valid for 5 minutes. Do not tell it to anyone.") % {"code": CODE_MASK}


def _skip(notification: Notification, patient: Any, preference: Any, now: datetime) -> str | None:
    return None if _code_still_wanted(kinds.subject(notification.login_code), now) else Notification.Skip.CODE_SPENT


def _unwanted(notification: Notification, now: datetime) -> str | None:
    wanted = _code_still_wanted(kinds.subject(notification.login_code), now)
    return None if wanted else _("Not sent: the code was used, replaced or has expired.")


def _routes(notification: Notification, routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    login_code = kinds.subject(notification.login_code)
    return [(login_code.channel, login_code.destination)]


def register_kinds() -> None:
    """Called once from NotificationsConfig.ready(). A code was asked for just now: no opt-out, consent or quiet hours."""
    kinds.register(Notification.Kind.CODE, text=_text, skip=_skip, unwanted=_unwanted, routes=_routes, asked_for=True)
