"""Issuing and checking one-time codes.

The limits (settings.LOGIN_CODE_*) are counted in the database so they hold
across processes and restarts, unlike a per-process cache. A wrong attempt is
committed before the error is raised: an attacker cannot roll it back.
"""

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from accounts.destinations import Destination
from accounts.models import LoginCode, User


class LoginCodeError(Exception):
    """A code could not be issued or accepted; `code` is machine-readable."""

    def __init__(self, code: str, message: str, *, retry_after: int | None = None, attempts_left: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.attempts_left = attempts_left


@dataclass(frozen=True)
class IssuedCode:
    login_code: LoginCode
    expires_in: int
    # The plain code, for the caller to send (patients.services); never stored, never logged.
    code: str = field(default="", repr=False)


def _hash(code: str, destination: str) -> str:
    return salted_hmac("accounts.LoginCode", f"{destination}:{code}").hexdigest()


def _check_rate(*, field: str, value: str | None, limit: tuple[int, int]) -> None:
    if not value:
        return
    count, window = limit
    since = timezone.now() - timedelta(seconds=window)
    recent = LoginCode.objects.filter(**{field: value}, created_at__gte=since).order_by("created_at")
    if recent.count() >= count:
        oldest = recent.values_list("created_at", flat=True)[0]
        retry_after = max(1, int((oldest + timedelta(seconds=window) - timezone.now()).total_seconds()))
        raise LoginCodeError(
            "rate_limited",
            _("Too many codes requested. Try again in %(minutes)s min.") % {"minutes": (retry_after + 59) // 60},
            retry_after=retry_after,
        )


def login_code_issue(
    *,
    destination: Destination,
    purpose: str = LoginCode.Purpose.LOGIN,
    ip: str | None,
    user: User | None = None,
) -> IssuedCode:
    """Create a code and supersede older ones for the same destination; the caller sends the returned code.

    accounts is below the outbox, so it sends nothing itself: patients.services hands the code on.
    """
    with transaction.atomic():
        _check_rate(field="destination", value=destination.value, limit=settings.LOGIN_CODE_PER_DESTINATION)
        _check_rate(field="ip", value=ip, limit=settings.LOGIN_CODE_PER_IP)
        LoginCode.objects.filter(destination=destination.value, purpose=purpose, used_at__isnull=True).update(superseded=True)
        code = f"{secrets.randbelow(10**6):06d}"
        ttl = settings.LOGIN_CODE_TTL_SECONDS
        row = LoginCode.objects.create(
            channel=destination.channel,
            destination=destination.value,
            purpose=purpose,
            user=user,
            code_hash=_hash(code, destination.value),
            expires_at=timezone.now() + timedelta(seconds=ttl),
            ip=ip,
        )
    return IssuedCode(login_code=row, expires_in=ttl, code=code)


def login_code_redeem(
    *,
    destination: Destination,
    code: str,
    purpose: str = LoginCode.Purpose.LOGIN,
    user: User | None = None,
) -> LoginCode:
    """Spend the current code for `destination` or raise LoginCodeError.

    The row is locked so two concurrent right answers cannot both succeed.
    """
    max_attempts = settings.LOGIN_CODE_MAX_ATTEMPTS
    error: LoginCodeError
    with transaction.atomic():
        row = (
            LoginCode.objects.select_for_update()
            .filter(destination=destination.value, purpose=purpose, used_at__isnull=True, superseded=False)
            .filter(user=user)
            .order_by("-created_at")
            .first()
        )
        now = timezone.now()
        if row is None:
            error = LoginCodeError("no_code", _("No active code for this address. Request a new code."))
        elif row.attempts >= max_attempts:
            error = LoginCodeError("locked", _("Too many wrong attempts. Request a new code."), attempts_left=0)
        elif row.expires_at <= now:
            error = LoginCodeError("expired", _("The code has expired. Request a new code."))
        elif constant_time_compare(_hash((code or "").strip(), destination.value), row.code_hash):
            row.used_at = now
            row.save(update_fields=["used_at"])
            return row
        else:
            LoginCode.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
            left = max_attempts - row.attempts - 1
            if left <= 0:
                error = LoginCodeError("locked", _("Too many wrong attempts. Request a new code."), attempts_left=0)
            else:
                error = LoginCodeError(
                    "wrong_code",
                    _("Wrong code. Attempts left: %(left)s.") % {"left": left},
                    attempts_left=left,
                )
    raise error


def login_codes_purge(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop codes past any use; rate limits only look back an hour."""
    deleted, _unused = LoginCode.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
