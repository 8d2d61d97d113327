from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


def display_name(*, first_name: str, last_name: str, username: str) -> str:
    """How colleagues see a person in conversations, lists, notes and logs: the full name, else the login.

    The one rule: User.display_name and lists that read plain values (the inbox) both call it.
    """
    return " ".join(part for part in (first_name.strip(), last_name.strip()) if part) or username


class User(AbstractUser):
    """Staff members and portal patients alike.

    What a user may do comes from elsewhere: clinic memberships (clinics.Membership)
    for staff, a Patient profile for the portal. Patients have no password; they
    sign in with a one-time code (LoginCode).
    """

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name  # admin columns, filters and choices show the name, not the login

    @property
    def display_name(self) -> str:
        return display_name(first_name=self.first_name, last_name=self.last_name, username=self.username)


class LoginCode(models.Model):
    """A one-time code sent to a phone or an e-mail address.

    Only a salted HMAC of the code is kept. A code is spent on success, dies
    after LOGIN_CODE_TTL_SECONDS, and locks after LOGIN_CODE_MAX_ATTEMPTS
    wrong tries; requesting a new one supersedes the old.
    """

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")

    class Purpose(models.TextChoices):
        LOGIN = "login", _("Sign in")
        CONTACT_CHANGE = "contact_change", _("Change of phone or e-mail")

    channel = models.CharField(max_length=8, choices=Channel.choices)
    destination = models.CharField(max_length=254)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.LOGIN)
    # For a contact change: the account that asked for it (the code proves the new value).
    user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.CASCADE)
    code_hash = models.CharField(max_length=128)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = _("one-time code")
        verbose_name_plural = _("one-time codes")
        indexes = [
            models.Index(fields=["destination", "created_at"]),
            models.Index(fields=["ip", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.destination}"
