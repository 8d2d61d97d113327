import zoneinfo
from datetime import datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from clinics.tenancy import ALL_ROLES, CLINIC_ADMINS, Policy, Role, TenantManager

TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones()) if "/" in name]


class Clinic(models.Model):
    """A tenant. Its staff see only its rows; patients may be contacts of many clinics."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("address in the portal"), unique=True, max_length=80)
    time_zone = models.CharField(_("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="Europe/Moscow")
    phone = PhoneNumberField(_("phone"), blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    website = models.URLField(_("website"), blank=True)
    lost_lead_price_rub = models.PositiveIntegerField(
        _("price of a lost lead, RUB"),
        default=1000,
        help_text=_("Used by the dashboard to show what unanswered contacts cost."),
    )
    offline_notice_minutes = models.PositiveSmallIntegerField(
        _("notify offline patients after, min"),
        default=2,
        help_text=_("A message still unread this long after it was sent goes out by SMS/e-mail (one notice for a burst)."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    tenancy = Policy(clinic="pk", change=frozenset({Role.OWNER, Role.MANAGER}))
    objects = TenantManager()

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)


class Branch(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="branches", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = PhoneNumberField(_("phone"), blank=True)

    tenancy = Policy()
    objects = TenantManager()

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["clinic", "name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="branch_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name


class WorkingHours(models.Model):
    """Opening hours of the clinic (or one branch) on a weekday, in the clinic's zone.

    Several intervals a day are allowed (a lunch break splits the day in two).
    """

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="working_hours", verbose_name=_("clinic"))
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.CASCADE, verbose_name=_("branch"))
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"), default=time(9))
    closes = models.TimeField(_("closes"), default=time(20))

    tenancy = Policy()
    objects = TenantManager()

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["clinic", "branch", "weekday", "opens"]
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=F("opens")), name="working_hours_closes_after_opens"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"

    def clean(self) -> None:
        if self.opens and self.closes and self.closes <= self.opens:
            raise ValidationError({"closes": _("Closing time must be after opening time.")})
        if self.clinic_id and self.branch is not None and self.branch.clinic_id != self.clinic_id:
            raise ValidationError({"branch": _("This branch belongs to another clinic.")})


class Membership(models.Model):
    """A staff user's role in one clinic. A user may work in several clinics."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user"))
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("clinic"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    tenancy = Policy(view=CLINIC_ADMINS, change=frozenset({Role.OWNER}))
    objects = TenantManager()

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        ordering = ["clinic", "role", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "clinic"], name="membership_one_role_per_clinic")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} ({self.clinic})"


class Specialty(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="specialties", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=120)

    tenancy = Policy()
    objects = TenantManager()

    class Meta:
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")
        ordering = ["clinic", "name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="specialty_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """What a patient books: its duration sets the slot length."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="services", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=200)
    specialty = models.ForeignKey(
        Specialty, null=True, blank=True, on_delete=models.SET_NULL, related_name="services", verbose_name=_("specialty")
    )
    duration_minutes = models.PositiveSmallIntegerField(_("duration, min"), default=30, validators=[MinValueValidator(5)])
    price_rub = models.DecimalField(
        _("price, RUB"), max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    is_active = models.BooleanField(_("active"), default=True)

    tenancy = Policy()
    objects = TenantManager()

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["clinic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="service_unique_name_per_clinic"),
            models.CheckConstraint(condition=Q(duration_minutes__gte=5), name="service_duration_at_least_5"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.clinic_id and self.specialty is not None and self.specialty.clinic_id != self.clinic_id:
            raise ValidationError({"specialty": _("This specialty belongs to another clinic.")})


class Doctor(models.Model):
    """A doctor of one clinic; `user` is set when the doctor answers in the CRM."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="doctors", verbose_name=_("clinic"))
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="doctor_profiles", verbose_name=_("user")
    )
    full_name = models.CharField(_("full name"), max_length=200)
    specialties = models.ManyToManyField(Specialty, blank=True, related_name="doctors", verbose_name=_("specialties"))
    services = models.ManyToManyField(Service, blank=True, related_name="doctors", verbose_name=_("services"))
    photo = models.ImageField(_("photo"), upload_to="doctors/", blank=True)
    bio = models.TextField(_("short bio"), blank=True, max_length=2000)
    is_active = models.BooleanField(_("active"), default=True)

    tenancy = Policy(view=ALL_ROLES, change=CLINIC_ADMINS)
    objects = TenantManager()

    class Meta:
        verbose_name = _("doctor")
        verbose_name_plural = _("doctors")
        ordering = ["clinic", "full_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "user"], condition=Q(user__isnull=False), name="doctor_one_profile_per_user_and_clinic"
            )
        ]

    def __str__(self) -> str:
        return self.full_name

    def clean(self) -> None:
        """The login that answers as this doctor must be a doctor of the same clinic."""
        if (
            self.user_id
            and self.clinic_id
            and not Membership.objects.filter(user_id=self.user_id, clinic_id=self.clinic_id, role="doctor", is_active=True).exists()
        ):
            raise ValidationError({"user": _("Choose a staff login with the doctor role in this clinic.")})


class Tag(models.Model):
    """A clinic's own label for contacts (and, later, threads): 'VIP', 'implants', 'debt'."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="tags", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=60)

    tenancy = Policy(change=frozenset({Role.OWNER, Role.MANAGER, Role.OPERATOR}))
    objects = TenantManager()

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["clinic", "name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="tag_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name
