"""The outbox in the admin: every notification, where it went, and each attempt (owners and managers)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline

from clinics.tenancy.admin import ReadOnlyTenantAdmin
from notifications.models import Delivery, DeliveryAttempt, Notification


class DeliveryInline(TabularInline):
    model = Delivery
    fields = ("channel", "destination", "status", "provider", "provider_message_id", "attempts", "last_error", "sent_at", "delivered_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "recipient", "kind", "status", "skip_reason", "not_before", "thread_patient", "clinic")
    list_filter = ("status", "kind", "skip_reason", "clinic")
    search_fields = ("recipient__username", "recipient__patient__phone", "recipient__patient__full_name")
    list_select_related = ("recipient", "clinic", "thread__patient")
    inlines = [DeliveryInline]

    @admin.display(description=_("patient"))
    def thread_patient(self, obj: Notification) -> str:
        return str(obj.thread.patient) if obj.thread_id else "—"


class AttemptInline(TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "finished_at", "outcome", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantAdmin):
    """Each SMS or e-mail with its attempt history: why a patient did not get a message."""

    list_display = ("created_at", "channel", "destination", "status", "provider", "attempts", "last_error", "clinic")
    list_filter = ("status", "channel", "provider", "notification__clinic")
    search_fields = ("destination", "provider_message_id")
    list_select_related = ("notification__clinic",)
    inlines = [AttemptInline]

    @admin.display(description=_("clinic"))
    def clinic(self, obj: Delivery) -> str:
        return str(obj.notification.clinic)
