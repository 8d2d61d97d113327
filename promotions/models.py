"""A clinic's promotions and who they reached.

A promotion reaches each person once (a Receipt per account holder): in the
portal the clinic stays highlighted until the person opens it (ONDOC), and
optionally by SMS/e-mail through the notifications outbox, in rate-limited batches.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.tenancy import CLINIC_ADMINS, Policy, TenantManager


class Promotion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        LAUNCHED = "launched", _("Launched")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="promotions", verbose_name=_("clinic"))
    title = models.CharField(_("title"), max_length=120)
    text = models.TextField(_("text"), max_length=2000)
    image = models.ImageField(_("image"), upload_to="promotions/", blank=True)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))
    # Audience: every patient who ever wrote to the clinic, narrowed by any of these that are set.
    tags = models.ManyToManyField("clinics.Tag", blank=True, related_name="promotions", verbose_name=_("only contacts with these tags"))
    doctor = models.ForeignKey(
        "clinics.Doctor", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("only patients of this doctor")
    )
    last_visit_before = models.DateField(_("last visit before"), null=True, blank=True, help_text=_("e.g. patients not seen for a year"))
    last_visit_after = models.DateField(_("last visit after"), null=True, blank=True)
    by_sms = models.BooleanField(_("also by SMS"), default=False)
    by_email = models.BooleanField(_("also by e-mail"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    launched_at = models.DateTimeField(_("launched"), null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    tenancy = Policy(view=CLINIC_ADMINS, change=CLINIC_ADMINS)
    objects = TenantManager()

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(valid_until__gte=F("valid_from")), name="promotion_dates_in_order")]

    def __str__(self) -> str:
        return self.title


class Receipt(models.Model):
    """One person reached by one promotion: when, and whether they opened it."""

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="receipts", verbose_name=_("promotion"))
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="promotion_receipts", verbose_name=_("patient"))
    created_at = models.DateTimeField(_("reached"), default=timezone.now)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)

    tenancy = Policy(clinic="promotion__clinic", view=CLINIC_ADMINS, change=frozenset(), patient="patient")
    objects = TenantManager()

    class Meta:
        verbose_name = _("promotion receipt")
        verbose_name_plural = _("promotion receipts")
        constraints = [models.UniqueConstraint(fields=["promotion", "patient"], name="receipt_once_per_person")]

    def __str__(self) -> str:
        return f"{self.promotion} → {self.patient}"
