"""What each kind of notice says and when it is no longer wanted, declared by the app that owns its subject.

The outbox sits below the apps whose events it carries (messaging's threads, appointments'
visits, promotions), so it cannot import them. Each owning app registers its kinds with one
explicit call in its `AppConfig.ready()` (messaging/notices.py, appointments/reminders.py,
promotions/notices.py; codes and personal reminders in notifications/apps.py); dispatch and
sending look a kind up here. A kind nobody registered is a programming error, raised loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from notifications.models import Notification, Preference

Route = tuple[str, str]  # (channel, destination)
# (notification, for_patient) -> (subject, text); called in the clinic's language.
Text = Callable[["Notification", bool], tuple[str, str]]
# At dispatch: a Notification.Skip value when the notice must not go out, else None.
Skip = Callable[["Notification", Any, "Preference", datetime], "str | None"]
# Just before sending: a reason (shown on the delivery) when it is no longer wanted, else None.
Unwanted = Callable[["Notification", datetime], "str | None"]
# The routes this notice may take out of the person's own ones.
Routes = Callable[["Notification", list[Route]], list[Route]]
# The text for one channel (e.g. the SMS invites a reply).
ChannelText = Callable[["Notification", str, str], str]


T = TypeVar("T")


def subject(value: T | None) -> T:
    """The row a notice is about, which its kind guarantees (a confirm request has its visit, a code its code)."""
    if value is None:
        raise LookupError("a notice without the subject its kind needs")
    return value


def _never(*_args: Any) -> None:
    return None


def _all_routes(_notification: Notification, routes: list[Route]) -> list[Route]:
    return routes


def _same_text(_notification: Notification, _channel: str, text: str) -> str:
    return text


@dataclass(frozen=True)
class KindRules:
    text: Text
    skip: Skip = _never
    unwanted: Unwanted = _never
    routes: Routes = _all_routes
    channel_text: ChannelText = _same_text
    # Consent, opt-out and quiet hours do not apply (a sign-in code asked for just now).
    asked_for: bool = False


_RULES: dict[str, KindRules] = {}


def register(
    *kinds: str,
    text: Text,
    skip: Skip = _never,
    unwanted: Unwanted = _never,
    routes: Routes = _all_routes,
    channel_text: ChannelText = _same_text,
    asked_for: bool = False,
) -> None:
    """Declare the rules of `kinds`; registering a kind twice with other rules is refused (two owners)."""
    rules = KindRules(text=text, skip=skip, unwanted=unwanted, routes=routes, channel_text=channel_text, asked_for=asked_for)
    for kind in kinds:
        if _RULES.get(kind, rules) != rules:
            raise ValueError(f"notification kind {kind!r} is registered twice")
        _RULES[kind] = rules


def rules_for(kind: str) -> KindRules:
    try:
        return _RULES[kind]
    except KeyError:
        raise LookupError(f"notification kind {kind!r} has no rules: its app registers them in AppConfig.ready()") from None
