from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from clinics.models import Branch, Clinic, Doctor, Membership, Service, Specialty, Tag, WorkingHours
from clinics.services import membership_grant, membership_grant_check, membership_update
from clinics.tenancy.admin import TenantAdmin


@admin.register(Clinic)
class ClinicAdmin(TenantAdmin):
    list_display = ("name", "slug", "time_zone", "phone", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def has_add_permission(self, request, *args) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Branch)
class BranchAdmin(TenantAdmin):
    list_display = ("name", "clinic", "address", "phone")
    list_filter = ("clinic",)
    list_select_related = ("clinic",)


@admin.register(WorkingHours)
class WorkingHoursAdmin(TenantAdmin):
    list_display = ("clinic", "branch", "weekday", "opens", "closes")
    list_filter = ("clinic", "weekday")
    list_select_related = ("clinic", "branch")


@admin.register(Specialty)
class SpecialtyAdmin(TenantAdmin):
    list_display = ("name", "clinic")
    list_filter = ("clinic",)
    search_fields = ("name",)
    list_select_related = ("clinic",)


@admin.register(Service)
class ServiceAdmin(TenantAdmin):
    list_display = ("name", "clinic", "specialty", "duration_minutes", "price_rub", "is_active")
    list_filter = ("clinic", "is_active")
    search_fields = ("name",)
    list_select_related = ("clinic", "specialty")


@admin.register(Doctor)
class DoctorAdmin(TenantAdmin):
    """The doctor's page; appointments.admin adds the weekly schedule to it (DoctorWithScheduleAdmin)."""

    list_display = ("full_name", "clinic", "specialty_list", "is_active")
    list_filter = ("clinic", "is_active")
    search_fields = ("full_name",)
    list_select_related = ("clinic",)
    filter_horizontal = ("specialties", "services")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("specialties")

    @admin.display(description=_("specialties"))
    def specialty_list(self, obj: Doctor) -> str:
        return ", ".join(s.name for s in obj.specialties.all())


@admin.register(Tag)
class TagAdmin(TenantAdmin):
    list_display = ("name", "clinic")
    list_filter = ("clinic",)
    list_select_related = ("clinic",)


class StaffAddForm(forms.ModelForm):
    """Adds a person to the clinic: an existing staff login or a new one."""

    username = forms.CharField(label=_("login"), max_length=150)
    email = forms.EmailField(label=_("e-mail"), required=False)
    first_name = forms.CharField(label=_("first name"), required=False)
    last_name = forms.CharField(label=_("last name"), required=False)
    password = forms.CharField(label=_("password"), required=False, widget=forms.PasswordInput, help_text=_("Only for a new login."))

    class Meta:
        model = Membership
        fields = ("clinic", "role")

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            # The same check membership_grant runs, so that problems show beside the fields.
            membership_grant_check(
                actor=self.actor,
                clinic=cleaned["clinic"],
                role=cleaned["role"],
                username=cleaned["username"],
                password=cleaned.get("password") or None,
            )
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ("user", "clinic", "role", "is_active", "granted_at")
    list_filter = ("clinic", "role", "is_active")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    list_select_related = ("user", "clinic")
    add_fields = ("clinic", "role", "username", "email", "first_name", "last_name", "password")

    @admin.display(description=_("created"), ordering="created_at")
    def granted_at(self, obj: Membership):
        return obj.created_at

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = StaffAddForm
            kwargs["fields"] = self.add_fields
        else:
            kwargs["fields"] = ("role", "is_active")
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": self.add_fields if obj is None else ("role", "is_active")})]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = membership_update(actor=request.user, membership=obj, role=data["role"], is_active=data["is_active"])
        else:
            saved = membership_grant(
                actor=request.user,
                clinic=data["clinic"],
                role=data["role"],
                username=data["username"],
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                password=data.get("password") or None,
            )
        # The admin logs and redirects with `obj`: let it be the row the service saved.
        obj.__dict__.update(saved.__dict__)
