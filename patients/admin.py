from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from clinics.tenancy.admin import ReadOnlyTenantAdmin, TenantAdmin
from patients.models import ConsentDocument, ConsentRecord, Contact, ContactChange, Patient
from patients.services import consent_document_publish, contact_update


@admin.register(Contact)
class ContactAdmin(TenantAdmin):
    """The clinic's contact card. Who the person is (name, phone) is the patient's own data: read-only here."""

    list_display = ("patient_name", "patient_phone", "clinic", "source_channel", "first_contact_at", "assigned_operator", "tag_list")
    list_filter = ("clinic", "source_channel", "tags", "assigned_operator")
    search_fields = ("patient__full_name", "patient__phone", "patient__email")
    list_select_related = ("patient", "clinic", "assigned_operator")
    readonly_fields = (
        "clinic",
        "patient",
        "patient_phone",
        "patient_email",
        "first_contact_at",
        "source_channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "referrer",
    )
    fieldsets = (
        (None, {"fields": ("patient", "patient_phone", "patient_email", "clinic")}),
        (_("Work with the contact"), {"fields": ("tags", "assigned_operator", "notes")}),
        (
            _("Where the contact came from"),
            {
                "fields": (
                    "first_contact_at",
                    "source_channel",
                    "utm_source",
                    "utm_medium",
                    "utm_campaign",
                    "utm_content",
                    "utm_term",
                    "referrer",
                )
            },
        ),
    )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        # A clinic has a handful of tags: ticking boxes fits a laptop screen, two 384 px pick-lists do not.
        if db_field.name == "tags":
            kwargs["widget"] = UnfoldAdminCheckboxSelectMultipleWidget
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def has_add_permission(self, request, *args) -> bool:
        return False  # contacts come from patients (portal now, messengers and calls later)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing about a patient is thrown away from a list screen

    @admin.display(description=_("patient"), ordering="patient__full_name")
    def patient_name(self, obj: Contact) -> str:
        return str(obj.patient)

    @admin.display(description=_("phone"))
    def patient_phone(self, obj: Contact) -> str:
        return str(obj.patient.phone or (obj.patient.guardian.phone if obj.patient.guardian is not None else "") or "—")

    @admin.display(description=_("e-mail"))
    def patient_email(self, obj: Contact) -> str:
        return obj.patient.email or "—"

    @admin.display(description=_("tags"))
    def tag_list(self, obj: Contact) -> str:
        return ", ".join(t.name for t in obj.tags.all())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        contact_update(
            actor=request.user,
            contact=obj,
            notes=data.get("notes", ""),
            tags=list(data.get("tags") or []),
            assigned_operator=data.get("assigned_operator"),
        )

    def save_related(self, request, form, formsets, change):
        pass  # contact_update has set the tags already


@admin.register(Patient)
class PatientAdmin(ReadOnlyTenantAdmin):
    list_display = ("__str__", "phone", "email", "relation", "guardian", "created_at")
    search_fields = ("full_name", "phone", "email")
    list_select_related = ("guardian",)
    exclude = ("user",)


@admin.register(ContactChange)
class ContactChangeAdmin(ReadOnlyTenantAdmin):
    list_display = ("patient", "field", "old_value", "new_value", "changed_at")
    list_select_related = ("patient",)
    search_fields = ("patient__full_name", "old_value", "new_value")


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(TenantAdmin):
    """New versions only: a published text never changes (patients accepted exactly it)."""

    list_display = ("title", "clinic", "version", "published_at", "text_sha256")
    list_filter = ("clinic",)
    list_select_related = ("clinic",)
    fields = ("clinic", "title", "text")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return ("clinic", "title", "text", "version", "text_sha256", "published_at") if obj else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = consent_document_publish(actor=request.user, clinic=data["clinic"], title=data["title"], text=data["text"])
        obj.__dict__.update(saved.__dict__)  # the admin logs and redirects with `obj`


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyTenantAdmin):
    list_display = ("patient", "clinic", "action", "document_version", "at", "ip", "channel")
    list_filter = ("clinic", "action", "channel")
    list_select_related = ("patient", "clinic")
    search_fields = ("patient__full_name", "patient__phone")
