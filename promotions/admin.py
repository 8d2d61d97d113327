"""The promotion editor: owners and managers write a promotion, launch it, and watch its reach."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from clinics.tenancy.admin import TenantAdmin
from notifications.models import Delivery
from promotions import selectors, services
from promotions.models import Promotion

CHANNEL_FIGURE_LABELS = {
    "queued": _("queued"),
    "sent": _("sent"),
    "delivered": _("delivered"),
    "failed": _("failed"),
}


@admin.register(Promotion)
class PromotionAdmin(TenantAdmin):
    list_display = ("title", "clinic", "valid_from", "valid_until", "status", "launched_at")
    # Only the user's own clinics in the filter: a plain related filter would list every clinic.
    list_filter = ("status", ("clinic", admin.RelatedOnlyFieldListFilter))
    search_fields = ("title",)
    list_select_related = ("clinic",)
    readonly_fields = ("audience_size", "status", "launched_at", "reach")
    fieldsets = (
        (None, {"fields": ("clinic", "title", "text", "image", "valid_from", "valid_until")}),
        (_("Audience"), {"fields": ("tags", "doctor", "last_visit_before", "last_visit_after", "audience_size"), "description": _(
            "Every patient who ever wrote to the clinic, narrowed by each filter you set."
        )}),
        (_("Channels"), {"fields": ("by_sms", "by_email"), "description": _(
            "The portal highlight is always on. SMS and e-mail go to people who did not opt out, at most 200 a minute, never at night."
        )}),
        (_("Reach"), {"fields": ("status", "launched_at", "reach")}),
    )  # fmt: skip
    actions = ["launch"]
    actions_detail = ["launch_one"]

    @admin.display(description=_("audience size"))
    def audience_size(self, obj: Promotion) -> str:
        """Before launch: how many people the saved filters reach, and how many an SMS / e-mail can go to."""
        if obj.pk is None:
            return str(_("Save the promotion to see how many people it would reach."))
        if obj.status == Promotion.Status.LAUNCHED:
            return str(_("Launched: see the reach below."))
        cache = vars(obj)  # unfold reads a read-only field more than once per page
        if "_audience_html" not in cache:
            size = selectors.promotion_audience_size(promotion=obj)
            cache["_audience_html"] = render_to_string("admin/promotions/audience.html", {"size": size, "promotion": obj})
        return cache["_audience_html"]

    @admin.display(description=_("reach"))
    def reach(self, obj: Promotion) -> str:
        if obj.pk is None or obj.status != Promotion.Status.LAUNCHED:
            return "—"
        cache = vars(obj)  # unfold reads a read-only field more than once per page
        if "_reach_html" not in cache:
            reach = selectors.promotion_reach(promotion=obj)
            rows = [
                (label, [getattr(reach.channels[channel], f) for f in CHANNEL_FIGURE_LABELS]) for channel, label in Delivery.Channel.choices
            ]
            context = {"reach": reach, "rows": rows, "figure_labels": list(CHANNEL_FIGURE_LABELS.values())}
            cache["_reach_html"] = render_to_string("admin/promotions/reach.html", context)
        return cache["_reach_html"]

    def get_object(self, request, object_id, from_field=None):
        """The change page and its Launch button's permission check read the same row: once per request."""
        memo = request.__dict__.setdefault("_promotion_rows", {})
        key = (str(object_id), from_field)
        if key not in memo:
            memo[key] = super().get_object(request, object_id, from_field)
        return memo[key]

    def get_queryset(self, request):
        # The change page's figures need the clinic's time zone.
        return super().get_queryset(request).select_related("clinic")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_change_permission(self, request, obj=None) -> bool:
        # A launched promotion is history: its text is what people received.
        if obj is not None and obj.status == Promotion.Status.LAUNCHED:
            return False
        return super().has_change_permission(request, obj)

    @admin.action(description=_("Launch: reach the audience now"))
    def launch(self, request, queryset):
        for promotion in queryset:
            self._launch(request, promotion)

    def _launch(self, request: HttpRequest, promotion: Promotion) -> None:
        """Launch through the service and tell the manager how it went (the list action and the page's button)."""
        try:
            reached = services.promotion_launch(actor=request.user, promotion=promotion)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, f"{promotion}: {' '.join(getattr(exc, 'messages', [str(exc)]))}", messages.ERROR)
        else:
            self.message_user(request, _("%(title)s: %(count)s people reached.") % {"title": promotion.title, "count": reached})

    def has_launch_one_permission(self, request: HttpRequest, object_id: str | int | None = None) -> bool:
        """The button shows on a draft the user may change; promotion_launch checks the role again."""
        promotion = self.get_object(request, str(object_id)) if object_id else None
        return promotion is not None and promotion.status == Promotion.Status.DRAFT and self.has_change_permission(request, promotion)

    @action(description=_("Launch"), url_path="launch", permissions=["launch_one"], icon="campaign")
    def launch_one(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The promotion page's button: a confirmation with the audience size (GET), then the launch itself (POST)."""
        promotion = self.get_object(request, object_id)
        page = reverse("admin:promotions_promotion_change", args=[promotion.pk])
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Launch the promotion?"),
                "promotion": promotion,
                "size": selectors.promotion_audience_size(promotion=promotion),
                "back": page,
            }
            return TemplateResponse(request, "admin/promotions/launch_confirm.html", context)
        self._launch(request, promotion)
        return redirect(page)
