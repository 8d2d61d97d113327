"""Admin screens of booking: schedules, exceptions, rules, visits, the waiting list, freed-slot offers.

Set-up rows (schedules, exceptions, rules) save through clinics.services.catalogue_save as
every set-up row does. Visits are never saved by a form: the list links to the calendar
(appointments.admin_calendar), whose actions each call one booking service.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline

from appointments import services
from appointments.models import BookingRules, ScheduleException, ScheduleRule, SlotOffer, Visit, WaitlistEntry
from clinics.admin import DoctorAdmin
from clinics.models import Doctor
from clinics.services import catalogue_delete, catalogue_save
from clinics.tenancy import FRONT_DESK, can_change_any, can_view_any, clinics_with_role
from clinics.tenancy.admin import ReadOnlyTenantAdmin, TenantAdmin
from core.errors import refusal_text

# Filter choices only from rows the user sees: a plain related filter would list every clinic's doctors.
DOCTOR = ("doctor", admin.RelatedOnlyFieldListFilter)
CLINIC = ("clinic", admin.RelatedOnlyFieldListFilter)


# --- set-up ---------------------------------------------------------------------------------------


class ScheduleRuleInline(TabularInline):
    """The doctor's weekly template on the doctor's page; rows save through catalogue_save (DoctorAdmin.save_formset)."""

    model = ScheduleRule
    fields = ("weekday", "starts", "ends", "branch", "room", "valid_from", "valid_until")
    extra = 0
    tab = True

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user).select_related("branch")

    def has_view_permission(self, request, obj=None) -> bool:
        return can_view_any(request.user, ScheduleRule)

    def has_add_permission(self, request, obj=None) -> bool:
        return can_change_any(request.user, ScheduleRule)

    def has_change_permission(self, request, obj=None) -> bool:
        return can_change_any(request.user, ScheduleRule)

    def has_delete_permission(self, request, obj=None) -> bool:
        return can_change_any(request.user, ScheduleRule)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "branch":
            kwargs["queryset"] = db_field.remote_field.model.objects.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def schedule_formset_save(request, formset, doctor) -> None:
    """Inline schedule rows go through the same service as the schedule screen (checks, audit)."""
    rows = formset.save(commit=False)
    for row in formset.deleted_objects:
        catalogue_delete(actor=request.user, instance=row)
    for row in rows:
        row.clinic_id = doctor.clinic_id
        row.doctor = doctor
        catalogue_save(actor=request.user, instance=row, created=row.pk is None)


class DoctorWithScheduleAdmin(DoctorAdmin):
    """The doctor's page with their weekly schedule: registered here, as clinics does not know appointments above it."""

    def get_inlines(self, request, obj):
        return [ScheduleRuleInline] if obj is not None else []

    def save_formset(self, request, form, formset, change):
        if formset.model is ScheduleRule:
            schedule_formset_save(request, formset, form.instance)
        else:
            super().save_formset(request, form, formset, change)


admin.site.unregister(Doctor)
admin.site.register(Doctor, DoctorWithScheduleAdmin)


@admin.register(ScheduleRule)
class ScheduleRuleAdmin(TenantAdmin):
    list_display = ("doctor", "weekday", "starts", "ends", "branch", "room", "valid_from", "valid_until", "clinic")
    list_filter = (CLINIC, DOCTOR, "weekday")
    search_fields = ("doctor__full_name",)
    list_select_related = ("doctor", "branch", "clinic")
    fields = ("clinic", "doctor", "weekday", "starts", "ends", "branch", "room", "valid_from", "valid_until")


@admin.register(ScheduleException)
class ScheduleExceptionAdmin(TenantAdmin):
    list_display = ("doctor", "kind", "date_from", "date_to", "starts", "ends", "note", "clinic")
    list_filter = (CLINIC, "kind", DOCTOR)
    search_fields = ("doctor__full_name", "note")
    list_select_related = ("doctor", "clinic")
    date_hierarchy = "date_from"
    fields = ("clinic", "doctor", "kind", "date_from", "date_to", "starts", "ends", "branch", "room", "note")


@admin.register(BookingRules)
class BookingRulesAdmin(TenantAdmin):
    list_display = ("clinic", "min_notice_minutes", "horizon_days", "late_cancel_hours", "max_upcoming_visits", "default_slot_minutes")
    list_select_related = ("clinic",)


# --- visits ---------------------------------------------------------------------------------------


@admin.register(Visit)
class VisitAdmin(ReadOnlyTenantAdmin):
    """The list of visits; a visit opens on the calendar's visit page, where every change is a service call."""

    list_display = ("local_starts", "patient", "patient_phone", "doctor", "service", "status", "source", "clinic")
    list_filter = ("status", "source", DOCTOR, CLINIC, ("starts_at", admin.DateFieldListFilter))
    search_fields = ("patient__full_name", "patient__phone")
    list_select_related = ("patient", "doctor", "service", "clinic")
    date_hierarchy = "starts_at"
    ordering = ("-starts_at", "-pk")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        visit = self.get_object(request, object_id)
        if visit is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return HttpResponseRedirect(reverse("calendar:visit", args=[visit.pk]))

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("calendar:new"))

    def has_add_permission(self, request, *args) -> bool:
        """The front desk of some clinic books (on the calendar's new-visit form)."""
        return bool(request.user.is_superuser or clinics_with_role(request.user, FRONT_DESK))

    @admin.display(description=_("starts"), ordering="starts_at")
    def local_starts(self, obj: Visit) -> str:
        return f"{timezone.localtime(obj.starts_at, obj.clinic.tz):%d.%m.%Y %H:%M}"

    @admin.display(description=_("phone"))
    def patient_phone(self, obj: Visit) -> str:
        return obj.patient.phone.as_international if obj.patient.phone else "—"


class WaitlistAddForm(forms.ModelForm):
    class Meta:
        model = WaitlistEntry
        fields = ("doctor", "service", "patient")


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(TenantAdmin):
    """Who waits for an earlier time. Added through waitlist_join (consent, clinic checks); removed by an action."""

    list_display = ("patient", "doctor", "service", "created_at", "is_active", "clinic")
    list_filter = ("is_active", DOCTOR, CLINIC)
    search_fields = ("patient__full_name", "patient__phone")
    list_select_related = ("patient", "doctor", "service", "clinic")
    autocomplete_fields = ("patient",)
    actions = ["leave"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = WaitlistAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("doctor", "service", "patient") if obj is None else ("clinic", "doctor", "service", "patient", "created_at", "is_active")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("clinic", "doctor", "service", "patient", "created_at", "is_active")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field is read-only: nothing to save
        data = form.cleaned_data
        try:
            entry = services.waitlist_join(actor=request.user, patient=data["patient"], doctor=data["doctor"], service=data["service"])
        except (ValidationError, PermissionDenied) as exc:
            # The form already passed: a service refusal (consent, service of the doctor) is shown, nothing saved.
            raise _Refused(refusal_text(exc)) from exc
        obj.__dict__.update(entry.__dict__)

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused as refused:
            messages.error(request, str(refused))
            return HttpResponseRedirect(request.get_full_path())

    @admin.action(description=_("Remove from the waiting list"))
    def leave(self, request, queryset):
        done = 0
        for entry in queryset.filter(is_active=True).select_related("patient"):
            try:
                services.waitlist_leave(actor=request.user, entry=entry)
                done += 1
            except PermissionDenied as exc:
                messages.error(request, refusal_text(exc))
        if done:
            messages.success(request, gettext("Removed from the waiting list: %(count)s.") % {"count": done})


class _Refused(Exception):
    """A service refused the add form's data after validation."""


@admin.register(SlotOffer)
class SlotOfferAdmin(ReadOnlyTenantAdmin):
    list_display = ("local_starts", "doctor", "service", "status", "visit", "created_at", "clinic")
    list_filter = ("status", DOCTOR, CLINIC)
    list_select_related = ("doctor", "service", "clinic", "visit")
    exclude = ("offered_to",)
    readonly_fields = ("offered_list",)

    @admin.display(description=_("starts"), ordering="starts_at")
    def local_starts(self, obj: SlotOffer) -> str:
        return f"{timezone.localtime(obj.starts_at, obj.clinic.tz):%d.%m.%Y %H:%M}"

    @admin.display(description=_("offered to"))
    def offered_list(self, obj: SlotOffer) -> str:
        return ", ".join(p.full_name for p in obj.offered_to.all())
