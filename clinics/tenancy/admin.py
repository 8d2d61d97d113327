"""Admin adapter of the tenancy layer: querysets, choices and permissions from each model's Policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext as _
from unfold.admin import ModelAdmin, TabularInline

from clinics.tenancy import ALL_ROLES, can_change_any, can_view_any, clinics_editable_by, clinics_with_role

# How TenantAdmin writes a row: clinics.services' catalogue_save / catalogue_delete (checked and audited),
# set by ClinicsConfig.ready() with one explicit call. The tenancy layer is below audit and clinics,
# so it names no writer of theirs itself.
ROW_WRITERS: dict[str, Callable[..., Any]] = {}


def use_row_writers(*, save: Callable[..., Any], delete: Callable[..., Any]) -> None:
    ROW_WRITERS.update(save=save, delete=delete)


def staff_users_visible_to(user: Any) -> models.QuerySet[Any]:
    """Users who work in one of `user`'s clinics: the only people a form may offer."""
    User = get_user_model()
    if user.is_superuser:
        return User.objects.filter(memberships__isnull=False).distinct()
    return User.objects.filter(memberships__clinic_id__in=clinics_with_role(user, ALL_ROLES), memberships__is_active=True).distinct()


class TenantModelForm(forms.ModelForm):  # type: ignore[type-arg]  # subscripting needs django-stubs-ext at run time
    """Refuses related rows (FK or M2M) that belong to a clinic other than the row's own."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        clinic = cleaned.get("clinic") or getattr(self.instance, "clinic", None)
        if clinic is None:
            return cleaned
        for name, value in cleaned.items():
            if name == "clinic" or value is None:
                continue
            related = value if isinstance(value, (list, tuple, models.QuerySet)) else [value]
            for obj in related:
                if isinstance(obj, models.Model) and getattr(obj, "clinic_id", clinic.pk) != clinic.pk:
                    self.add_error(name, ValidationError(_("“%(obj)s” belongs to another clinic.") % {"obj": obj}))
                    break
        return cleaned


class TenantAdmin(ModelAdmin):
    """Base admin for every tenant model. Subclasses never filter by clinic themselves."""

    form = TenantModelForm

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset: models.QuerySet[Any] = super().get_queryset(request).visible_to(request.user)
        return queryset

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view_any(request.user, self.model)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return can_view_any(request.user, self.model) or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return can_change_any(request.user, self.model)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        if obj is None:
            return can_change_any(request.user, self.model)
        # A change page asks this several times (buttons, inlines, fields): one query per row and request.
        memo: dict[tuple[str, Any], bool] = request.__dict__.setdefault("_tenant_editable", {})
        key = (self.model._meta.label, obj.pk)
        if key not in memo:
            memo[key] = bool(self.model.objects.editable_by(request.user).filter(pk=obj.pk).exists())
        return memo[key]

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs["queryset"] = self._choices(db_field, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs["queryset"] = self._choices(db_field, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _choices(self, db_field: Any, request: HttpRequest) -> models.QuerySet[Any]:
        related = db_field.remote_field.model
        user = request.user
        if db_field.name == "clinic":
            return clinics_editable_by(user, self.model, related._default_manager.all())
        if hasattr(related, "tenancy"):
            visible: models.QuerySet[Any] = related.objects.visible_to(user)
            return visible
        if related is get_user_model():
            return staff_users_visible_to(user)
        every: models.QuerySet[Any] = related._default_manager.all()
        return every

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        ROW_WRITERS["save"](actor=request.user, instance=obj, created=not change, changed=form.changed_data)

    def delete_model(self, request: Any, obj: Any) -> None:
        ROW_WRITERS["delete"](actor=request.user, instance=obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyTenantAdmin(TenantAdmin):
    """Logs (consent, audit, contact history): visible, never edited."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class ReadOnlyTenantInline(TabularInline):
    """Rows shown inside a log page, by the tenancy policy: an inline's default permissions are Django's model
    permissions, which clinic staff do not have, so without this only a superuser saw them."""

    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset: models.QuerySet[Any] = super().get_queryset(request).visible_to(request.user)
        return queryset

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return can_view_any(request.user, self.model)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False
