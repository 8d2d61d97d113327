import hashlib
from datetime import date

from django.core.validators import MinLengthValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from clinics.tenancy import ALL_ROLES, CLINIC_ADMINS, FRONT_DESK, NOBODY, Policy, TenantManager


def patient_hint(*, phone: object, birth_date: date | None) -> str:
    """What tells two people of the same name apart in a staff list: the phone's last four digits
    («…01-23», enough to ask "is that your number ending 0123?"), else the birth year."""
    digits = "".join(c for c in str(phone or "") if c.isdigit())
    if len(digits) >= 4:
        return f"…{digits[-4:-2]}-{digits[-2:]}"
    if birth_date is not None:
        return _("born %(year)s") % {"year": birth_date.year}
    return ""


class Patient(models.Model):
    """A person. Account holders sign in to the portal; dependants (a child, an
    elderly parent) have no account and are represented by their guardian.

    Phone and e-mail may change; the person, their clinic contacts and every
    thread stay, and the old values go to ContactChange. Only the patient changes
    them (after proving the new value with a code): they are login identities, so
    a clinic must not be able to redirect someone's codes.
    """

    class Relation(models.TextChoices):
        SELF = "self", _("Account holder")
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        SPOUSE = "spouse", _("Spouse")
        OTHER = "other", _("Other relative")

    user = models.OneToOneField(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="patient", verbose_name=_("account")
    )
    guardian = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="dependants", verbose_name=_("guardian")
    )
    relation = models.CharField(_("relation"), max_length=8, choices=Relation.choices, default=Relation.SELF)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    phone = PhoneNumberField(_("phone"), null=True, blank=True)
    email = models.EmailField(_("e-mail"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    tenancy = Policy(clinic="contacts__clinic", view=FRONT_DESK, change=NOBODY, to_many=True)
    objects = TenantManager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["full_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["phone"], condition=Q(phone__isnull=False, guardian__isnull=True), name="patient_unique_login_phone"
            ),
            models.UniqueConstraint(
                fields=["email"], condition=Q(email__isnull=False, guardian__isnull=True), name="patient_unique_login_email"
            ),
            models.CheckConstraint(
                condition=Q(guardian__isnull=False) | Q(phone__isnull=False) | Q(email__isnull=False),
                name="patient_account_holder_has_contact",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or str(self.phone or self.email or f"#{self.pk}")

    @property
    def hint(self) -> str:
        return patient_hint(phone=self.phone, birth_date=self.birth_date) if self.full_name else ""

    @property
    def given_name(self) -> str:
        """The name a greeting uses, from `full_name` by one rule.

        Russian names are written «Фамилия Имя Отчество», so with three words the second is the given
        name, and with two Cyrillic words too («Зайцев Сергей» → «Сергей»); two Latin words are read in
        the Western order ("Anna Petrova" → "Anna"). One word, or four and more, is used as it is.
        """
        words = self.full_name.split()
        if len(words) == 3:
            return words[1]
        if len(words) == 2:
            cyrillic = any("а" <= ch <= "я" or ch == "ё" for ch in self.full_name.lower())
            return words[1] if cyrillic else words[0]
        return self.full_name.strip()

    @property
    def account_holder(self) -> "Patient":
        """Who acts (and consents) for this person: themselves or their guardian."""
        return self.guardian or self  # no query without a guardian: a null key reads as None


class ContactChange(models.Model):
    """An old phone or e-mail of a patient, kept when it changes."""

    class Field(models.TextChoices):
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("E-mail")

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contact_changes", verbose_name=_("patient"))
    field = models.CharField(_("field"), max_length=8, choices=Field.choices)
    old_value = models.CharField(_("old value"), max_length=254, blank=True)
    new_value = models.CharField(_("new value"), max_length=254)
    changed_at = models.DateTimeField(_("changed"), auto_now_add=True)
    changed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    tenancy = Policy(clinic="patient__contacts__clinic", view=FRONT_DESK, change=NOBODY, to_many=True)
    objects = TenantManager()

    class Meta:
        verbose_name = _("contact change")
        verbose_name_plural = _("contact history")
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_field_display()}: {self.old_value} → {self.new_value}"


class Contact(models.Model):
    """A patient as a contact of one clinic: where they came from, who handles them."""

    class Source(models.TextChoices):
        WEB = "web", _("Web portal")
        TELEGRAM = "telegram", _("Telegram")
        WHATSAPP = "whatsapp", _("WhatsApp")
        VK = "vk", _("VK")
        VIBER = "viber", _("Viber")
        PHONE = "phone", _("Phone call")
        WALK_IN = "walk_in", _("Walk-in")
        OTHER = "other", _("Other")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="contacts", verbose_name=_("clinic"))
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="contacts", verbose_name=_("patient"))
    first_contact_at = models.DateTimeField(_("first contact"), default=timezone.now)
    source_channel = models.CharField(_("source channel"), max_length=16, choices=Source.choices, default=Source.WEB)
    utm_source = models.CharField(_("UTM source"), max_length=100, blank=True)
    utm_medium = models.CharField(_("UTM medium"), max_length=100, blank=True)
    utm_campaign = models.CharField(_("UTM campaign"), max_length=100, blank=True)
    utm_content = models.CharField(_("UTM content"), max_length=100, blank=True)
    utm_term = models.CharField(_("UTM term"), max_length=100, blank=True)
    referrer = models.URLField(_("referrer"), max_length=500, blank=True)
    tags = models.ManyToManyField("clinics.Tag", blank=True, related_name="contacts", verbose_name=_("tags"))
    notes = models.TextField(_("notes"), blank=True, max_length=5000)
    assigned_operator = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("assigned operator")
    )
    # Set when staff merge this contact into another contact of the same person; its threads moved there.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_contacts", verbose_name=_("merged into")
    )

    tenancy = Policy(view=FRONT_DESK, change=FRONT_DESK)
    objects = TenantManager()

    class Meta:
        db_table = "patients_patientinclinic"  # the model was renamed; its table kept the name
        verbose_name = _("clinic contact")
        verbose_name_plural = _("clinic contacts")
        ordering = ["-first_contact_at"]
        constraints = [models.UniqueConstraint(fields=["clinic", "patient"], name="contact_one_per_patient_and_clinic")]

    def __str__(self) -> str:
        return f"{self.patient} @ {self.clinic}"


class ConsentDocument(models.Model):
    """A version of a clinic's personal-data consent text (152-FZ).

    A separate document, not bundled with other terms. Immutable: a new text is
    a new version, and patients are asked again.
    """

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="consent_documents", verbose_name=_("clinic"))
    version = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("text"), validators=[MinLengthValidator(50)])
    text_sha256 = models.CharField(_("SHA-256 of the text"), max_length=64, editable=False)
    published_at = models.DateTimeField(_("published"), default=timezone.now)

    tenancy = Policy(view=ALL_ROLES, change=CLINIC_ADMINS)
    objects = TenantManager()

    class Meta:
        verbose_name = _("consent text")
        verbose_name_plural = _("consent texts")
        ordering = ["clinic", "-version"]
        constraints = [models.UniqueConstraint(fields=["clinic", "version"], name="consent_document_unique_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    @staticmethod
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A published consent text cannot change; publish a new version.")
        self.text_sha256 = self.digest(self.text)
        super().save(*args, **kwargs)


class ConsentRecord(models.Model):
    """Append-only log of consent given and withdrawn.

    The subject is the account holder; their consent covers the dependants they
    represent. The version and hash of the accepted text are copied so that the
    record proves what was shown even if the document row is ever lost.
    """

    class Action(models.TextChoices):
        GRANTED = "granted", _("Granted")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Channel(models.TextChoices):
        WEB = "web", _("Web portal")
        API = "api", _("API")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consent_records", verbose_name=_("patient"))
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="consent_records", verbose_name=_("clinic"))
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="records", verbose_name=_("text"))
    document_version = models.PositiveIntegerField(_("text version"))
    text_sha256 = models.CharField(_("SHA-256 of the text"), max_length=64)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    at = models.DateTimeField(_("time"), auto_now_add=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=400, blank=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.WEB)

    tenancy = Policy(view=CLINIC_ADMINS, change=NOBODY)
    objects = TenantManager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent log")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["patient", "clinic", "-at"])]

    def __str__(self) -> str:
        return f"{self.patient} — {self.get_action_display()} v{self.document_version}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Consent records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Consent records are append-only.")
