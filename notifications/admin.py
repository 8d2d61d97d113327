"""The outbox in the admin: every notification, where it went, and each attempt (owners and managers)."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from clinics.tenancy.admin import ReadOnlyTenantAdmin, ReadOnlyTenantInline
from notifications import selectors
from notifications.models import Delivery, DeliveryAttempt, Notification

# Filter choices only from rows the user sees: a plain related filter would list every clinic.
CLINIC = ("clinic", admin.RelatedOnlyFieldListFilter)


class DeliveryInline(ReadOnlyTenantInline):
    model = Delivery
    fields = ("channel", "destination", "status", "provider", "provider_message_id", "attempts", "last_error", "sent_at", "delivered_at")
    readonly_fields = fields
    show_change_link = True


class _DeliveryFilter(admin.SimpleListFilter):
    """Notifications with a delivery whose `field` has the chosen value: EXISTS, so a notification is listed
    once, without DISTINCT."""

    field: str
    options: type[models.TextChoices]  # not `choices`: SimpleListFilter's own method has that name

    def lookups(self, request, model_admin):
        return self.options.choices

    def queryset(self, request, queryset):
        if self.value() not in self.options.values:
            return queryset
        return queryset.filter(Exists(Delivery.objects.filter(notification=OuterRef("pk"), **{self.field: self.value()})))


class DeliveryChannelFilter(_DeliveryFilter):
    title = _("channel")
    parameter_name = "channel"
    field, options = "channel", Delivery.Channel


class DeliveryStatusFilter(_DeliveryFilter):
    """E.g. the SMS a dying worker may or may not have sent."""

    title = _("delivery status")
    parameter_name = "delivery_status"
    field, options = "status", Delivery.Status


@admin.register(Notification)
class NotificationAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "to", "kind", "status", "skip_reason", "not_before", "patient", "clinic")
    list_filter = (
        "kind",
        "status",
        "skip_reason",
        DeliveryChannelFilter,
        DeliveryStatusFilter,
        ("created_at", admin.DateFieldListFilter),
        CLINIC,
    )
    search_fields = ("recipient__username", "recipient__patient__phone", "recipient__patient__full_name")
    list_select_related = ("recipient__patient", "clinic", "thread__patient")
    readonly_fields = ("attempt_history",)
    inlines = [DeliveryInline]

    @admin.display(description=_("recipient"), ordering="recipient__username")
    def to(self, obj: Notification) -> str:
        """A person's name, not their login ("patient-180"); a sign-in code may precede any account."""
        if obj.recipient_id is None:
            return "—"
        patient = getattr(obj.recipient, "patient", None)
        return str(patient) if patient is not None else getattr(obj.recipient, "display_name", "—")

    @admin.display(description=_("patient"))
    def patient(self, obj: Notification) -> str:
        """The thread's patient, else the recipient's own card (a promotion or a reminder has no thread); staff have none."""
        if obj.thread is not None:
            return str(obj.thread.patient)
        patient = getattr(obj.recipient, "patient", None)
        return str(patient) if patient is not None else "—"

    @admin.display(description=_("attempt history"))
    def attempt_history(self, obj: Notification) -> str:
        """Each delivery's tries on the notification's own page: why a patient did not get it, without opening each delivery.

        Kept on the object: unfold reads a read-only field's contents more than once while rendering it.
        """
        cache = vars(obj)
        if "_attempt_history" not in cache:
            labels = [_("delivery"), _("attempt"), _("started"), _("finished"), _("outcome"), _("error")]
            attempts = selectors.notification_attempts(notification=obj)
            cache["_attempt_history"] = render_to_string("admin/notifications/attempts.html", {"attempts": attempts, "labels": labels})
        return str(cache["_attempt_history"])


class AttemptInline(ReadOnlyTenantInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "finished_at", "outcome", "error")
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantAdmin):
    """Each SMS or e-mail with its attempt history: why a patient did not get a message."""

    list_display = ("created_at", "channel", "destination", "status", "provider", "attempts", "last_error", "clinic")
    list_filter = ("status", "channel", "provider", ("notification__clinic", admin.RelatedOnlyFieldListFilter))
    search_fields = ("destination", "provider_message_id")
    list_select_related = ("notification__clinic",)
    inlines = [AttemptInline]

    @admin.display(description=_("clinic"))
    def clinic(self, obj: Delivery) -> str:
        return str(obj.notification.clinic) if obj.notification.clinic_id else "—"  # sign-in codes belong to no clinic
