"""The promotion editor: owners and managers write a promotion, launch it, and watch its reach."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from clinics.tenancy.admin import TenantAdmin
from promotions import selectors, services
from promotions.models import Promotion

REACH_LABELS = {
    "reached": _("reached"),
    "sent": _("SMS/e-mail sent"),
    "delivered": _("delivered"),
    "opened": _("opened in the portal"),
    "booked_after": _("booked a visit after"),
}


@admin.register(Promotion)
class PromotionAdmin(TenantAdmin):
    list_display = ("title", "clinic", "valid_from", "valid_until", "status", "launched_at")
    list_filter = ("status", "clinic")
    search_fields = ("title",)
    list_select_related = ("clinic",)
    readonly_fields = ("status", "launched_at", "reach")
    fieldsets = (
        (None, {"fields": ("clinic", "title", "text", "image", "valid_from", "valid_until")}),
        (_("Audience"), {"fields": ("tags", "doctor", "last_visit_before", "last_visit_after"), "description": _(
            "Every patient who ever wrote to the clinic, narrowed by each filter you set."
        )}),
        (_("Channels"), {"fields": ("by_sms", "by_email"), "description": _(
            "The portal highlight is always on. SMS and e-mail go to people who did not opt out, at most 200 a minute, never at night."
        )}),
        (_("Reach"), {"fields": ("status", "launched_at", "reach")}),
    )  # fmt: skip
    actions = ["launch"]

    @admin.display(description=_("reach"))
    def reach(self, obj: Promotion) -> str:
        if obj.pk is None or obj.status != Promotion.Status.LAUNCHED:
            return "—"
        figures = selectors.promotion_reach(promotion=obj)
        return format_html_join(" · ", "{}: <b>{}</b>", ((REACH_LABELS[k], v) for k, v in figures.items()))

    def has_change_permission(self, request, obj=None) -> bool:
        # A launched promotion is history: its text is what people received.
        if obj is not None and obj.status == Promotion.Status.LAUNCHED:
            return False
        return super().has_change_permission(request, obj)

    @admin.action(description=_("Launch: reach the audience now"))
    def launch(self, request, queryset):
        for promotion in queryset:
            try:
                reached = services.promotion_launch(actor=request.user, promotion=promotion)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{promotion}: {' '.join(getattr(exc, 'messages', [str(exc)]))}", messages.ERROR)
            else:
                self.message_user(request, _("%(title)s: %(count)s people reached.") % {"title": promotion.title, "count": reached})
