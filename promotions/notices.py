"""What the outbox says about a promotion, and when it no longer goes out.

Registered with notifications.kinds from PromotionsConfig.ready(): the outbox sits below promotions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from notifications import kinds
from notifications.models import Delivery, Notification, Preference


def _text(notification: Notification, for_patient: bool) -> tuple[str, str]:
    promotion = kinds.subject(notification.promotion)
    link = settings.SITE_URL + reverse("promotions:promotion", args=[promotion.pk])
    return promotion.title, f"{kinds.subject(notification.clinic).name}: {promotion.title}. {link}"


def _skip(notification: Notification, patient: Any, preference: Preference, now: datetime) -> str | None:
    if not preference.promotions:
        return Notification.Skip.OPTED_OUT
    if kinds.subject(notification.promotion).valid_until < timezone.localtime(now, kinds.subject(notification.clinic).tz).date():
        return Notification.Skip.ENDED
    return None


def _routes(notification: Notification, routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Only the channels the manager chose for this promotion."""
    promotion = kinds.subject(notification.promotion)
    chosen: dict[str, bool] = {Delivery.Channel.SMS: promotion.by_sms, Delivery.Channel.EMAIL: promotion.by_email}
    return [route for route in routes if chosen[route[0]]]


def register_kinds() -> None:
    """Called once from PromotionsConfig.ready()."""
    kinds.register(Notification.Kind.PROMOTION, text=_text, skip=_skip, routes=_routes)
