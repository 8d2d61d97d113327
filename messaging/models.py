"""Threads and messages between a patient and a clinic (or one of its doctors).

A thread is persistent: one per patient and clinic (and one per patient and
doctor), so a question asked weeks after a visit lands in the same history.
Messages are numbered per thread (`seq`) so that a client can say "I have up to
N" and get exactly what it missed; read markers are kept per side as the
highest seq seen, the way messengers keep them.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.tenancy import ALL_ROLES, CLINIC_ADMINS, FRONT_DESK, Policy, TenantManager

MAX_TEXT = 4000


class Team(models.Model):
    """A group of staff threads can be routed to (reception, billing, a department)."""

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="teams", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=100)
    members = models.ManyToManyField("accounts.User", blank=True, related_name="teams", verbose_name=_("members"))

    tenancy = Policy(view=FRONT_DESK, change=CLINIC_ADMINS)
    objects = TenantManager()

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["clinic", "name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="team_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name


class Thread(models.Model):
    class Kind(models.TextChoices):
        CLINIC = "clinic", _("Clinic")
        DOCTOR = "doctor", _("Doctor")

    class Channel(models.TextChoices):
        WEB = "web", _("Web portal")
        TELEGRAM = "telegram", _("Telegram")
        WHATSAPP = "whatsapp", _("WhatsApp")
        VK = "vk", _("VK")
        EMAIL = "email", _("E-mail")
        PHONE = "phone", _("Phone call")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        RESOLVED = "resolved", _("Resolved")
        SNOOZED = "snoozed", _("Snoozed")

    class Priority(models.IntegerChoices):
        LOW = 0, _("Low")
        NORMAL = 1, _("Normal")
        HIGH = 2, _("High")
        URGENT = 3, _("Urgent")

    # No index of its own (nor for `doctor`): thread_inbox and thread_doctor_inbox lead with them. Every message rewrites
    # the thread row in each index (last_activity_at is indexed), so an index less is a cheaper send.
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="threads", verbose_name=_("clinic"), db_index=False)
    # The person the conversation is about (a dependant for a child); their guardian writes for them.
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="threads", verbose_name=_("patient"))
    # The clinic's contact the thread is filed under; moves when staff merge two contacts of one person.
    contact = models.ForeignKey("patients.Contact", on_delete=models.PROTECT, related_name="threads", verbose_name=_("clinic contact"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.CLINIC)
    doctor = models.ForeignKey(
        "clinics.Doctor", null=True, blank=True, on_delete=models.PROTECT, related_name="threads", verbose_name=_("doctor"), db_index=False
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, default=Channel.WEB)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True)
    assigned_to = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_threads", verbose_name=_("assigned to")
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="threads", verbose_name=_("team"))
    tags = models.ManyToManyField("clinics.Tag", blank=True, related_name="threads", verbose_name=_("tags"))
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    # Health details are discussed here: notifications never carry the text, the inbox shows no preview.
    sensitive = models.BooleanField(_("sensitive"), default=False)

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now, db_index=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    # Set by a patient's message that no staff reply has answered yet: the inbox's waiting time.
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)

    # Counters kept by messaging.services in the same transaction as the message.
    last_seq = models.PositiveIntegerField(default=0)
    last_public_seq = models.PositiveIntegerField(default=0)  # the newest message the patient can see
    last_message_preview = models.CharField(max_length=140, blank=True)
    staff_unread = models.PositiveIntegerField(_("unread by staff"), default=0)
    patient_unread = models.PositiveIntegerField(default=0)
    staff_read_seq = models.PositiveIntegerField(default=0)
    patient_read_seq = models.PositiveIntegerField(default=0)
    staff_delivered_seq = models.PositiveIntegerField(default=0)
    patient_delivered_seq = models.PositiveIntegerField(default=0)
    staff_read_at = models.DateTimeField(null=True, blank=True)
    patient_read_at = models.DateTimeField(null=True, blank=True)

    # Front desk sees every thread of its clinic; a doctor only the threads addressed to them.
    tenancy = Policy(view=ALL_ROLES, change=ALL_ROLES, doctor="doctor", patient="patient")
    objects = TenantManager()

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")
        ordering = ["-last_activity_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "patient"], condition=Q(kind="clinic"), name="thread_one_clinic_thread_per_patient"),
            models.UniqueConstraint(
                fields=["clinic", "patient", "doctor"], condition=Q(kind="doctor"), name="thread_one_doctor_thread_per_patient"
            ),
            models.CheckConstraint(
                condition=(Q(kind="clinic", doctor__isnull=True) | Q(kind="doctor", doctor__isnull=False)),
                name="thread_doctor_iff_doctor_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "-last_activity_at"], name="thread_inbox"),
            models.Index(fields=["clinic", "status", "-last_activity_at"], name="thread_inbox_status"),
            models.Index(fields=["doctor", "-last_activity_at"], name="thread_doctor_inbox"),
            models.Index(fields=["status"], name="thread_status"),  # not db_index: PostgreSQL would add a second, LIKE index
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.DOCTOR:
            return f"{self.patient} ↔ {self.doctor}"
        return f"{self.patient} ↔ {self.clinic}"


class Message(models.Model):
    class Author(models.TextChoices):
        PATIENT = "patient", _("Patient")
        STAFF = "staff", _("Staff")
        SYSTEM = "system", _("System")
        BOT = "bot", _("Bot")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        ATTACHMENT = "attachment", _("Attachment")
        EVENT = "event", _("System event")
        NOTE = "note", _("Private note")

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages", verbose_name=_("thread"))
    seq = models.PositiveIntegerField(_("number in thread"))
    author = models.CharField(_("author"), max_length=8, choices=Author.choices)
    # The user who wrote it: a staff member, or the patient's (guardian's) portal account.
    sender = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("sender")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(_("text"), max_length=MAX_TEXT, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    client_msg_id = models.CharField(_("client message id"), max_length=64, blank=True)
    mentions = models.ManyToManyField("accounts.User", blank=True, related_name="mentioned_in", verbose_name=_("mentions"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    # Patients see their family's threads, never private notes or staff events.
    tenancy = Policy(
        clinic="thread__clinic",
        view=ALL_ROLES,
        change=ALL_ROLES,
        doctor="thread__doctor",
        patient="thread__patient",
        patient_visible=lambda user: ~Q(kind__in=STAFF_ONLY_KINDS),
    )
    objects = TenantManager()

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["thread", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["thread", "seq"], name="message_unique_seq"),
            models.UniqueConstraint(
                fields=["thread", "sender", "client_msg_id"], condition=~Q(client_msg_id=""), name="message_unique_client_id"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.text[:40]}"

    @property
    def is_public(self) -> bool:
        """Seen by the patient: everything but private notes and staff events (assignments, status)."""
        return self.kind not in STAFF_ONLY_KINDS


STAFF_ONLY_KINDS: tuple[str, ...] = (Message.Kind.NOTE, Message.Kind.EVENT)


def attachment_storage():
    return storages["attachments"]


def attachment_path(instance: Attachment, filename: str) -> str:
    # Never the uploaded name: it is user input and may be guessable.
    return f"attachments/{instance.thread_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """An image or PDF sent in a thread. Uploaded first, then attached by send_message.

    Files are served only through a view that checks the thread (messaging.views),
    never from MEDIA_URL.
    """

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("thread"))
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("message")
    )
    uploaded_by = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(_("file"), upload_to=attachment_path, storage=attachment_storage)
    thumbnail = models.FileField(_("thumbnail"), upload_to=attachment_path, storage=attachment_storage, blank=True)
    content_type = models.CharField(_("type"), max_length=64)
    size = models.PositiveIntegerField(_("size, bytes"))
    original_name = models.CharField(_("file name"), max_length=200)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)

    # A patient gets files of messages they can see, and their own uploads not sent yet.
    tenancy = Policy(
        clinic="thread__clinic",
        view=ALL_ROLES,
        change=ALL_ROLES,
        doctor="thread__doctor",
        patient="thread__patient",
        patient_visible=lambda user: (
            Q(message__isnull=False) & ~Q(message__kind__in=STAFF_ONLY_KINDS) | Q(message__isnull=True, uploaded_by=user)
        ),
    )
    objects = TenantManager()

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


CANNED_VARIABLES = ("patient_name", "patient_first_name", "clinic_name", "clinic_address", "clinic_phone", "clinic_url")


class CannedAnswer(models.Model):
    """A prepared reply: typed as /shortcode in the composer, variables filled for the thread."""

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="canned_answers", verbose_name=_("clinic"))
    # Set: a personal answer, seen only by its author beside the clinic's (which managers keep).
    owner = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="canned_answers",
        verbose_name=_("only for"),
        help_text=_("Empty: the whole clinic uses the answer."),
    )
    # Letters of any alphabet: operators type «/адрес» as readily as "/address".
    shortcode = models.SlugField(
        _("shortcode"),
        max_length=40,
        allow_unicode=True,
        help_text=_("Typed after / in the reply box: letters (Russian too), digits, - and _."),
    )
    title = models.CharField(_("title"), max_length=120)
    text = models.TextField(
        _("text"),
        max_length=MAX_TEXT,
        help_text=_("Variables: {patient_name}, {patient_first_name}, {clinic_name}, {clinic_address}, {clinic_phone}, {clinic_url}."),
    )

    tenancy = Policy(view=ALL_ROLES, change=CLINIC_ADMINS, owner="owner")
    objects = TenantManager()

    class Meta:
        verbose_name = _("canned answer")
        verbose_name_plural = _("canned answers")
        ordering = ["clinic", "shortcode"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "shortcode"],
                condition=Q(owner__isnull=True),
                name="canned_answer_unique_shortcode",
                violation_error_message=_("The clinic already has an answer with this shortcode."),
            ),
            models.UniqueConstraint(
                fields=["clinic", "owner", "shortcode"],
                condition=Q(owner__isnull=False),
                name="canned_answer_unique_personal_shortcode",
                violation_error_message=_("You already have an answer with this shortcode."),
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcode} — {self.title}"

    def save(self, *args, **kwargs):
        # One spelling per shortcode: the composer matches what is typed without regard to case.
        self.shortcode = self.shortcode.lower()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Refuse a text whose braces do not name a known variable: it would fail in the middle of a reply."""
        self.shortcode = (self.shortcode or "").lower()  # before the uniqueness checks, which compare it
        try:
            self.text.format_map({name: "" for name in CANNED_VARIABLES})
        except (KeyError, ValueError, IndexError) as exc:
            raise ValidationError(
                {
                    "text": _("Unknown variable %(name)s. Use: %(known)s.")
                    % {"name": exc, "known": ", ".join(f"{{{v}}}" for v in CANNED_VARIABLES)}
                }
            ) from None


class ThreadAccess(models.Model):
    """A staff member opened a thread. Owners and managers review these (quality control, 152-FZ)."""

    class Via(models.TextChoices):
        INBOX = "inbox", _("Inbox")
        API = "api", _("API")

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="accesses", verbose_name=_("thread"))
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("staff member"))
    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    via = models.CharField(_("screen"), max_length=16, choices=Via.choices)

    tenancy = Policy(clinic="thread__clinic", view=CLINIC_ADMINS, change=frozenset())
    objects = TenantManager()

    class Meta:
        verbose_name = _("thread access")
        verbose_name_plural = _("thread access log")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["thread", "-at"])]

    def __str__(self) -> str:
        return f"{self.user} → {self.thread_id} @ {self.at:%Y-%m-%d %H:%M}"


class SocketConnection(models.Model):
    """An open WebSocket. Tells services whether a recipient is online (else: notify them offline).

    Rows of crashed servers are ignored once `seen_at` is older than the heartbeat window.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    connected_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "seen_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.channel_name}"
