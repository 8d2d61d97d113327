"""The outbox: something a person should learn about while they are not looking.

Services write a Notification in the same transaction as the event that causes
it (a message to an offline patient, a mention of an offline operator), so none
is lost. Dispatch decides whether and how it goes out (consent, opt-out, quiet
hours, read in the meantime) and makes one Delivery per channel; a Celery task
sends each Delivery through a provider adapter and records every attempt.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.tenancy import CLINIC_ADMINS, Policy, TenantManager


class Notification(models.Model):
    class Kind(models.TextChoices):
        MESSAGE = "message", _("New message")
        MENTION = "mention", _("Mention in a note")
        CONFIRM = "confirm", _("Visit: please confirm")
        REMINDER = "reminder", _("Visit reminder")
        PROMOTION = "promotion", _("Promotion")
        PERSONAL = "personal", _("Personal reminder")
        ASSIGNED = "assigned", _("Thread assigned")
        CODE = "code", _("Sign-in code")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DISPATCHED = "dispatched", _("Dispatched")
        SKIPPED = "skipped", _("Skipped")
        CANCELLED = "cancelled", _("Cancelled")

    class Skip(models.TextChoices):
        OPTED_OUT = "opted_out", _("The person opted out")
        NO_CONSENT = "no_consent", _("Consent withdrawn")
        READ = "read", _("Read in time")
        NO_CHANNEL = "no_channel", _("No phone or e-mail to send to")
        VISIT_CHANGED = "visit_gone", _("The visit was cancelled, moved or has begun")
        ENDED = "ended", _("The promotion has ended")
        CODE_SPENT = "code_spent", _("The code was used, replaced or expired")

    # Empty for sign-in codes only: they belong to no clinic (no clinic's staff sees them) and may precede the account.
    clinic = models.ForeignKey(
        "clinics.Clinic", null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic")
    )
    recipient = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("recipient")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    thread = models.ForeignKey("messaging.Thread", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey("messaging.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    visit = models.ForeignKey("appointments.Visit", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    personal_reminder = models.ForeignKey(
        "notifications.PersonalReminder", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    promotion = models.ForeignKey("promotions.Promotion", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    # The code itself is never stored: only its hash (on LoginCode) and, for its lifetime, the cache (services.code_notify).
    login_code = models.ForeignKey("accounts.LoginCode", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # What makes it unique, for notices created by sweeps ("confirm:<visit>"): a second sweep adds nothing.
    key = models.CharField(_("key"), max_length=80, null=True, blank=True, unique=True)
    reason = models.CharField(_("reason"), max_length=32, default="offline")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Database defaults too: messaging's one-statement send inserts outbox rows in SQL.
    skip_reason = models.CharField(_("skipped because"), max_length=12, choices=Skip.choices, blank=True, default="", db_default="")
    # Urgent notices (sign-in codes) ignore quiet hours; the rest wait for the morning.
    urgent = models.BooleanField(_("urgent"), default=False, db_default=False)
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("dispatched"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    tenancy = Policy(view=CLINIC_ADMINS, change=frozenset())
    objects = TenantManager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["status", "not_before"]),
            models.Index(fields=["recipient", "thread", "status"]),  # the burst rule: one pending notice per person and thread
        ]

    def __str__(self) -> str:
        who = self.recipient if self.recipient_id else (self.login_code.destination if self.login_code is not None else "—")
        return f"{self.get_kind_display()} → {who}"


class Delivery(models.Model):
    """One notification on one channel. Sent at most once: see notifications.services.delivery_send."""

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        # The worker stopped while the provider had it: it may or may not have gone out, so it is never sent again.
        UNKNOWN = "unknown", _("Unknown whether sent")

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("notification"))
    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices)
    destination = models.CharField(_("to"), max_length=254)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    text = models.TextField(_("text"), max_length=2000)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    provider = models.CharField(_("provider"), max_length=20, blank=True)
    provider_message_id = models.CharField(_("provider's message id"), max_length=100, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    # Who holds a `sending` delivery and since when: the task that claimed it (its redelivery may settle it at once),
    # else the sweep, once it has been `sending` longer than settings.DELIVERY_STUCK_AFTER_SECONDS (see services).
    sending_since = models.DateTimeField(_("sending since"), null=True, blank=True)
    sending_task = models.CharField(_("sending task"), max_length=64, blank=True, default="")

    tenancy = Policy(clinic="notification__clinic", view=CLINIC_ADMINS, change=frozenset())
    objects = TenantManager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["notification", "channel"], name="delivery_one_per_channel")]
        indexes = [
            models.Index(fields=["destination", "channel"], name="delivery_to_idx"),  # an SMS reply finds its request by number
            models.Index(fields=["status", "sending_since"], name="delivery_stuck_idx"),  # the sweep's look for stuck ones
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.destination}"

    @property
    def idempotency_key(self) -> str:
        """Sent with the request where the provider supports it, and logged: one key per delivery, whatever the retries."""
        return f"delivery-{self.pk}"


class DeliveryAttempt(models.Model):
    """One try at handing a delivery to its provider, for the admin's attempt history."""

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        SENT = "sent", _("Accepted by the provider")
        RETRY = "retry", _("Temporary error, will retry")
        FAILED = "failed", _("Refused")
        INTERRUPTED = "interrupted", _("Interrupted (worker stopped)")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="history", verbose_name=_("delivery"))
    number = models.PositiveSmallIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    error = models.CharField(_("error"), max_length=500, blank=True)

    tenancy = Policy(clinic="delivery__notification__clinic", view=CLINIC_ADMINS, change=frozenset())
    objects = TenantManager()

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.get_outcome_display()}"


class Preference(models.Model):
    """How a person wants to be reached. No row: every channel they have."""

    user = models.OneToOneField("accounts.User", on_delete=models.CASCADE, related_name="notification_preference", verbose_name=_("user"))
    sms = models.BooleanField(_("by SMS"), default=True)
    email = models.BooleanField(_("by e-mail"), default=True)
    promotions = models.BooleanField(_("clinics' promotions"), default=True)
    opted_out = models.BooleanField(_("nothing at all"), default=False)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)


class PersonalReminder(models.Model):
    """A reminder a patient sets for themselves: "take the medicine", "book a check-up in six months"."""

    class Repeat(models.TextChoices):
        ONCE = "once", _("Once")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="personal_reminders", verbose_name=_("for"))
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic"))
    text = models.CharField(_("what to remind"), max_length=200)
    next_at = models.DateTimeField(_("next time"))
    repeat = models.CharField(_("repeat"), max_length=8, choices=Repeat.choices, default=Repeat.ONCE)
    repeat_until = models.DateField(_("repeat until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("personal reminder")
        verbose_name_plural = _("personal reminders")
        ordering = ["next_at"]
        indexes = [models.Index(fields=["is_active", "next_at"])]

    def __str__(self) -> str:
        return self.text

    @property
    def local_next_at(self):
        """next_at on the clinic's clock. A time saved before reminders were bounded (year 9999) may have no
        local time east of UTC; it is shown in UTC then, rather than failing every page that lists it."""
        try:
            return timezone.localtime(self.next_at, self.clinic.tz)
        except OverflowError:
            return self.next_at
