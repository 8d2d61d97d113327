"""Doctors' schedules and visits.

Times of day in schedules are the clinic's local wall-clock times (what the
clinic's staff type in); visits are stored in UTC and shown in the clinic's zone.
"""

from __future__ import annotations

from datetime import time

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.models import WorkingHours
from clinics.tenancy import ALL_ROLES, CLINIC_ADMINS, FRONT_DESK, Policy, TenantManager


class BookingRules(models.Model):
    """A clinic's booking rules. A clinic without a row books with the defaults below."""

    clinic = models.OneToOneField("clinics.Clinic", on_delete=models.CASCADE, related_name="booking_rules", verbose_name=_("clinic"))
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice, min"), default=120, help_text=_("How long before the start a patient may still book online.")
    )
    horizon_days = models.PositiveSmallIntegerField(_("book ahead, days"), default=60, help_text=_("How far ahead patients may book."))
    late_cancel_hours = models.PositiveSmallIntegerField(
        _("late-cancel window, h"),
        default=24,
        help_text=_("A cancellation closer to the visit than this counts as late; patients cannot move the visit online then."),
    )
    max_upcoming_visits = models.PositiveSmallIntegerField(
        _("upcoming visits per patient"), default=3, help_text=_("How many future visits one patient may hold in this clinic.")
    )
    default_slot_minutes = models.PositiveSmallIntegerField(
        _("slot length without a service, min"), default=30, help_text=_("Used when a search does not name a service.")
    )
    confirm_hours_before = models.PositiveSmallIntegerField(
        _("ask to confirm, h before"),
        default=24,
        help_text=_("A reminder with confirm and cancel links this long before the visit; 0 turns it off."),
    )
    remind_hours_before = models.PositiveSmallIntegerField(
        _("last reminder, h before"), default=2, help_text=_("A short reminder this long before the visit; 0 turns it off.")
    )

    tenancy = Policy()
    objects = TenantManager()

    class Meta:
        verbose_name = _("booking rules")
        verbose_name_plural = _("booking rules")
        constraints = [
            models.CheckConstraint(condition=Q(horizon_days__gte=1), name="booking_rules_horizon_at_least_a_day"),
            models.CheckConstraint(condition=Q(default_slot_minutes__gte=5), name="booking_rules_slot_at_least_5"),
        ]

    def __str__(self) -> str:
        return str(_("Booking rules of %(clinic)s") % {"clinic": self.clinic})


class ScheduleRule(models.Model):
    """One working interval of a doctor's weekly template (a lunch break makes two)."""

    Weekday = WorkingHours.Weekday

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="schedule_rules", verbose_name=_("clinic"))
    doctor = models.ForeignKey("clinics.Doctor", on_delete=models.CASCADE, related_name="schedule_rules", verbose_name=_("doctor"))
    branch = models.ForeignKey("clinics.Branch", null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("branch"))
    room = models.CharField(_("room"), max_length=40, blank=True)
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    starts = models.TimeField(_("starts"), default=time(9))
    ends = models.TimeField(_("ends"), default=time(18))
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)

    tenancy = Policy(doctor="doctor")
    objects = TenantManager()

    class Meta:
        verbose_name = _("schedule interval")
        verbose_name_plural = _("weekly schedule")
        ordering = ["clinic", "doctor", "weekday", "starts"]
        constraints = [models.CheckConstraint(condition=Q(ends__gt=F("starts")), name="schedule_rule_ends_after_starts")]
        indexes = [models.Index(fields=["doctor", "weekday"])]

    def __str__(self) -> str:
        return f"{self.doctor}: {self.get_weekday_display()} {self.starts:%H:%M}–{self.ends:%H:%M}"

    def clean(self) -> None:
        _check_times_and_clinic(self)
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValidationError({"valid_until": _("The end date must not be before the start date.")})


class ScheduleException(models.Model):
    """A change to the weekly template on some dates: an absence, or an extra shift.

    An absence without times takes whole days off; with times, only that interval
    of each day. An extra shift adds its interval on each of its days.
    """

    class Kind(models.TextChoices):
        VACATION = "vacation", _("Vacation")
        SICK = "sick", _("Sick day")
        DAY_OFF = "day_off", _("Day off")
        EXTRA = "extra", _("Extra shift")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="schedule_exceptions", verbose_name=_("clinic"))
    doctor = models.ForeignKey("clinics.Doctor", on_delete=models.CASCADE, related_name="schedule_exceptions", verbose_name=_("doctor"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.VACATION)
    date_from = models.DateField(_("from"))
    date_to = models.DateField(_("to (inclusive)"))
    starts = models.TimeField(_("starts"), null=True, blank=True)
    ends = models.TimeField(_("ends"), null=True, blank=True)
    branch = models.ForeignKey("clinics.Branch", null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("branch"))
    room = models.CharField(_("room"), max_length=40, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    tenancy = Policy(doctor="doctor")
    objects = TenantManager()

    class Meta:
        verbose_name = _("schedule exception")
        verbose_name_plural = _("schedule exceptions")
        ordering = ["clinic", "doctor", "date_from"]
        constraints = [
            models.CheckConstraint(condition=Q(date_to__gte=F("date_from")), name="schedule_exception_dates_in_order"),
            models.CheckConstraint(
                condition=Q(starts__isnull=True, ends__isnull=True) | Q(starts__isnull=False, ends__gt=F("starts")),
                name="schedule_exception_times_in_order",
            ),
            models.CheckConstraint(condition=~Q(kind="extra") | Q(starts__isnull=False), name="schedule_exception_extra_has_times"),
        ]
        indexes = [models.Index(fields=["doctor", "date_to"])]

    def __str__(self) -> str:
        return f"{self.doctor}: {self.get_kind_display()} {self.date_from:%d.%m.%Y}–{self.date_to:%d.%m.%Y}"

    @property
    def is_absence(self) -> bool:
        return self.kind != self.Kind.EXTRA

    def clean(self) -> None:
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValidationError({"date_to": _("The end date must not be before the start date.")})
        if (self.starts is None) != (self.ends is None):
            raise ValidationError({"ends": _("Give both times, or neither for whole days.")})
        if self.kind == self.Kind.EXTRA and self.starts is None:
            raise ValidationError({"starts": _("An extra shift needs its hours.")})
        _check_times_and_clinic(self)


def _check_times_and_clinic(row: ScheduleRule | ScheduleException) -> None:
    if row.starts is not None and row.ends is not None and row.ends <= row.starts:
        raise ValidationError({"ends": _("The end must be after the start.")})
    if row.doctor_id and row.clinic_id and row.doctor.clinic_id != row.clinic_id:
        raise ValidationError({"doctor": _("This doctor works in another clinic.")})
    if row.clinic_id and row.branch is not None and row.branch.clinic_id != row.clinic_id:
        raise ValidationError({"branch": _("This branch belongs to another clinic.")})


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class PostgresExclusionConstraint(ExclusionConstraint):
    """An exclusion constraint that exists on PostgreSQL only.

    The embedded default (SQLite) has no EXCLUDE: there the booking service's
    IMMEDIATE write transaction serializes bookings instead (appointments.services).
    Returning no SQL keeps SQLite's table rebuilds in later migrations working.
    """

    def constraint_sql(self, model, schema_editor):
        return super().constraint_sql(model, schema_editor) if schema_editor.connection.vendor == "postgresql" else None

    def create_sql(self, model, schema_editor):
        return super().create_sql(model, schema_editor) if schema_editor.connection.vendor == "postgresql" else None

    def remove_sql(self, model, schema_editor):
        return super().remove_sql(model, schema_editor) if schema_editor.connection.vendor == "postgresql" else None

    def validate(self, model, instance, exclude=None, using="default"):
        from django.db import connections

        if connections[using].vendor == "postgresql":
            super().validate(model, instance, exclude=exclude, using=using)


def room_label(room: str) -> str:
    """A room as patients read it: a bare number gets its word («101» → «каб. 101»); «Рентген» stays as written."""
    room = (room or "").strip()
    if room[:1].isdigit():
        return _("room %(room)s") % {"room": room}
    return room


class Visit(models.Model):
    """A visit: one patient with one doctor for one service at one time."""

    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        COMPLETED = "completed", _("Came")
        NO_SHOW = "no_show", _("No-show")

    class Source(models.TextChoices):
        PORTAL = "portal", _("Portal")
        THREAD = "thread", _("Conversation")
        OPERATOR = "operator", _("Operator")
        BOT = "bot", _("Bot")
        PHONE = "phone", _("Phone call")

    class CancelledBy(models.TextChoices):
        PATIENT = "patient", _("Patient")
        CLINIC = "clinic", _("Clinic")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="visits", verbose_name=_("clinic"))
    doctor = models.ForeignKey("clinics.Doctor", on_delete=models.PROTECT, related_name="visits", verbose_name=_("doctor"))
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="visits", verbose_name=_("patient"))
    service = models.ForeignKey("clinics.Service", on_delete=models.PROTECT, related_name="visits", verbose_name=_("service"))
    branch = models.ForeignKey("clinics.Branch", null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("branch"))
    room = models.CharField(_("room"), max_length=40, blank=True)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.BOOKED)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.PORTAL)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("booked by")
    )
    created_at = models.DateTimeField(_("booked at"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.CharField(_("cancelled by"), max_length=10, choices=CancelledBy.choices, blank=True)
    cancelled_by_user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("cancelled by (login)")
    )
    cancel_reason = models.CharField(_("cancellation reason"), max_length=300, blank=True)
    cancelled_late = models.BooleanField(_("cancelled late"), default=False)
    # A move is a cancellation of the old visit and a new one pointing back to it, in one transaction.
    rescheduled_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rescheduled_to", verbose_name=_("moved from")
    )
    thread = models.ForeignKey(
        "messaging.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="visits", verbose_name=_("conversation")
    )

    tenancy = Policy(view=ALL_ROLES, change=ALL_ROLES, doctor="doctor", patient="patient")
    objects = TenantManager()

    HOLDING = (Status.BOOKED, Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW)
    UPCOMING = (Status.BOOKED, Status.CONFIRMED)

    class Meta:
        db_table = "appointments_appointment"  # the model was renamed; its table kept the name
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        ordering = ["starts_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="visit_ends_after_starts"),
            # The database, not the code, guarantees one doctor is never booked twice at once.
            PostgresExclusionConstraint(
                name="visit_no_double_booking",
                expressions=[
                    (TsTzRange("starts_at", "ends_at", RangeBoundary()), RangeOperators.OVERLAPS),
                    ("doctor", RangeOperators.EQUAL),
                ],
                condition=~Q(status="cancelled"),
            ),
        ]
        indexes = [
            models.Index(fields=["doctor", "starts_at"]),
            models.Index(fields=["clinic", "starts_at"]),
            models.Index(fields=["patient", "starts_at"]),
        ]

    def __str__(self) -> str:
        local = timezone.localtime(self.starts_at, self.clinic.tz)
        return f"{local:%d.%m.%Y %H:%M} {self.doctor} — {self.patient}"

    @property
    def is_upcoming(self) -> bool:
        return self.status in self.UPCOMING and self.starts_at > timezone.now()

    @property
    def room_label(self) -> str:
        return room_label(self.room)

    @property
    def local_start(self):
        return timezone.localtime(self.starts_at, self.clinic.tz)

    @property
    def local_end(self):
        return timezone.localtime(self.ends_at, self.clinic.tz)


class WaitlistEntry(models.Model):
    """A patient who wants an earlier time with a doctor: freed slots are offered to them."""

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("clinic"))
    doctor = models.ForeignKey("clinics.Doctor", on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("doctor"))
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("patient"))
    service = models.ForeignKey("clinics.Service", on_delete=models.CASCADE, verbose_name=_("service"))
    created_at = models.DateTimeField(_("added"), default=timezone.now)
    is_active = models.BooleanField(_("waiting"), default=True)

    tenancy = Policy(view=ALL_ROLES, change=FRONT_DESK, doctor="doctor", patient="patient")
    objects = TenantManager()

    class Meta:
        verbose_name = _("waiting list entry")
        verbose_name_plural = _("waiting list")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["doctor", "patient"], condition=Q(is_active=True), name="waitlist_one_active_entry_per_doctor")
        ]

    def __str__(self) -> str:
        return f"{self.patient} → {self.doctor}"


class SlotOffer(models.Model):
    """A freed slot offered in the threads of waiting patients; the first to accept books it."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        TAKEN = "taken", _("Taken")
        EXPIRED = "expired", _("Expired")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="slot_offers", verbose_name=_("clinic"))
    doctor = models.ForeignKey("clinics.Doctor", on_delete=models.CASCADE, related_name="slot_offers", verbose_name=_("doctor"))
    service = models.ForeignKey("clinics.Service", on_delete=models.CASCADE, verbose_name=_("service"))
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    freed_by = models.ForeignKey(Visit, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("freed by"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.OPEN)
    offered_to = models.ManyToManyField("patients.Patient", related_name="slot_offers", verbose_name=_("offered to"))
    visit = models.OneToOneField(
        Visit, null=True, blank=True, on_delete=models.SET_NULL, related_name="from_offer", verbose_name=_("booked visit")
    )
    created_at = models.DateTimeField(_("offered at"), default=timezone.now)

    tenancy = Policy(view=FRONT_DESK, change=CLINIC_ADMINS)
    objects = TenantManager()

    class Meta:
        verbose_name = _("freed-slot offer")
        verbose_name_plural = _("freed-slot offers")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.doctor} {timezone.localtime(self.starts_at, self.clinic.tz):%d.%m %H:%M}"
