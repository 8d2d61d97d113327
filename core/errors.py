"""A refusal as the one sentence a person reads, whichever screen shows it (admin message, socket frame, API)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext


def one_line(exc: ValidationError) -> str:
    """Every message of a ValidationError, field errors included, joined into one line."""
    if hasattr(exc, "error_dict"):
        return " ".join(str(message) for messages in exc.message_dict.values() for message in messages)
    return " ".join(str(message) for message in exc.messages)


def refusal_text(exc: ValidationError | PermissionDenied) -> str:
    """What to tell the person: the validation messages, or why they may not (a role refusal says so by default)."""
    if isinstance(exc, ValidationError):
        return one_line(exc)
    return str(exc) or gettext("Your role in this clinic does not allow this.")
