"""The outbox: something a person should learn about while they are not looking.

Services write a Notification in the same transaction as the event that causes
it (a message to an offline patient, a mention of an offline operator), so none
is lost. Delivery (SMS, e-mail, retries, quiet hours) picks pending rows up.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.tenancy import CLINIC_ADMINS, Policy, TenantManager


class Notification(models.Model):
    class Kind(models.TextChoices):
        MESSAGE = "message", _("New message")
        MENTION = "mention", _("Mention in a note")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic"))
    recipient = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="notifications", verbose_name=_("recipient"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    thread = models.ForeignKey("messaging.Thread", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey("messaging.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(_("reason"), max_length=32, default="offline")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    tenancy = Policy(view=CLINIC_ADMINS, change=frozenset())
    objects = TenantManager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.recipient}"
