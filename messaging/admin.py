"""Admin screens of conversations: the thread list, canned answers, teams, the access log.

The work with a thread itself happens in the inbox (messaging.admin_inbox, /admin/inbox/);
the thread list here is a read-only index that links there.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from clinics.tenancy import clinics_with_role
from clinics.tenancy.admin import ReadOnlyTenantAdmin, TenantAdmin, TenantModelForm
from messaging.fragments import waiting_label
from messaging.models import CannedAnswer, Team, Thread, ThreadAccess


@admin.register(Thread)
class ThreadAdmin(ReadOnlyTenantAdmin):
    """Every conversation the user may see; opening one goes to the inbox (which logs the access)."""

    list_display = ("patient_link", "clinic", "kind_or_doctor", "status", "assigned_to", "staff_unread", "waiting", "last_activity_at")
    list_filter = ("status", "channel", "kind", "clinic")
    search_fields = ("patient__full_name", "patient__phone", "patient__email")
    list_select_related = ("patient", "clinic", "doctor", "assigned_to")
    list_display_links = None  # the patient's name links to the inbox instead
    ordering = ("-last_activity_at", "-pk")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The history is read in the inbox, where the access is recorded; 404 for threads not visible.
        thread = self.get_object(request, object_id)
        if thread is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return HttpResponseRedirect(reverse("inbox:thread", args=[thread.pk]))

    @admin.display(description=_("patient"), ordering="patient__full_name")
    def patient_link(self, obj: Thread) -> str:
        return format_html('<a href="{}">{}</a>', reverse("inbox:thread", args=[obj.pk]), obj.patient)

    @admin.display(description=_("kind"), ordering="kind")
    def kind_or_doctor(self, obj: Thread) -> str:
        return obj.doctor.full_name if obj.doctor is not None else obj.get_kind_display()

    @admin.display(description=_("waiting"), ordering="waiting_since")
    def waiting(self, obj: Thread) -> str:
        return waiting_label(obj.waiting_since, timezone.now()) if obj.waiting_since else "—"


class CannedAnswerForm(TenantModelForm):
    """An answer for the whole clinic needs a manager or owner there; anyone may keep one for themselves."""

    actor: Any = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        clinic, owner = cleaned.get("clinic"), cleaned.get("owner")
        everyone = clinic is not None and owner is None
        if (
            everyone
            and not self.actor.is_superuser
            and clinic is not None
            and clinic.pk not in clinics_with_role(self.actor, CannedAnswer.tenancy.change)
        ):
            self.add_error(
                "owner", _("Only the clinic's managers and owners write answers for everyone: choose yourself to keep it as your own.")
            )
        return cleaned


@admin.register(CannedAnswer)
class CannedAnswerAdmin(TenantAdmin):
    """Managers and owners write the clinic's answers; everyone may keep personal ones (the Policy says so)."""

    form = CannedAnswerForm
    list_display = ("shortcode", "title", "clinic", "kept_by")
    list_filter = ("clinic",)
    search_fields = ("shortcode", "title", "text")
    list_select_related = ("clinic", "owner")
    fields = ("clinic", "owner", "shortcode", "title", "text")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "owner":
            # Nobody writes a personal answer for a colleague.
            field.queryset = get_user_model().objects.filter(pk=request.user.pk)
            field.empty_label = _("The whole clinic")
        return field

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if not request.user.is_superuser and not clinics_with_role(request.user, CannedAnswer.tenancy.change):
            initial.setdefault("owner", request.user.pk)
        return initial

    @admin.display(description=_("only for"), ordering="owner")
    def kept_by(self, obj: CannedAnswer) -> str:
        return obj.owner.display_name if obj.owner is not None else str(_("the whole clinic"))


@admin.register(Team)
class TeamAdmin(TenantAdmin):
    list_display = ("name", "clinic", "member_list")
    list_filter = ("clinic",)
    search_fields = ("name",)
    list_select_related = ("clinic",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members":
            kwargs["widget"] = UnfoldAdminCheckboxSelectMultipleWidget
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("members"))
    def member_list(self, obj: Team) -> str:
        return ", ".join(m.display_name for m in obj.members.all())


@admin.register(ThreadAccess)
class ThreadAccessAdmin(ReadOnlyTenantAdmin):
    """Who opened which conversation and when (owners and managers only, by the model's Policy)."""

    list_display = ("at", "user", "thread_patient", "thread_clinic", "via")
    list_filter = ("via", "thread__clinic")
    search_fields = ("user__username", "thread__patient__full_name")
    list_select_related = ("user", "thread__patient", "thread__clinic")
    date_hierarchy = "at"

    @admin.display(description=_("patient"), ordering="thread__patient__full_name")
    def thread_patient(self, obj: ThreadAccess) -> str:
        return str(obj.thread.patient)

    @admin.display(description=_("clinic"))
    def thread_clinic(self, obj: ThreadAccess) -> str:
        return str(obj.thread.clinic)
