from django.db import models
from django.utils.translation import gettext_lazy as _

from clinics.tenancy import CLINIC_ADMINS, NOBODY, Policy, TenantManager


class AuditEvent(models.Model):
    """Who did what to a patient's data, or read it (152-FZ, quality control).

    Append-only: written in the same transaction as the change it records.
    Rows without a clinic (a patient changing their own phone) are visible to the
    platform only; clinic rows to that clinic's owner and manager.
    """

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("actor"))
    clinic = models.ForeignKey(
        "clinics.Clinic", null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic")
    )
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("patient")
    )
    action = models.CharField(_("action"), max_length=64)
    target = models.CharField(_("object"), max_length=120, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    tenancy = Policy(view=CLINIC_ADMINS, change=NOBODY)
    objects = TenantManager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-at"]
        indexes = [models.Index(fields=["clinic", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")
