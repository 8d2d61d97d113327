"""DRF adapter of the tenancy layer: one permission and one viewset mixin for every staff endpoint."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from clinics.tenancy import can_change_any, can_view_any


class ClinicRolePermission(permissions.BasePermission):
    """Reads need a role in Policy.view of some clinic, writes a role in Policy.change.

    The object check runs against `editable_by`, so a manager of clinic A cannot
    change a row of clinic B even by id (it is not in the queryset anyway: 404).
    """

    message = _("Your role in this clinic does not allow this.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        model = view.get_queryset().model  # type: ignore[attr-defined]  # the tenant viewsets'; APIView has none
        if request.method in permissions.SAFE_METHODS:
            return can_view_any(request.user, model)
        return can_change_any(request.user, model)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(type(obj).objects.editable_by(request.user).filter(pk=obj.pk).exists())


class TenantViewSetMixin:
    """get_queryset() is `visible_to(request.user)` of the view's base queryset."""

    permission_classes: Any = [permissions.IsAuthenticated, ClinicRolePermission]
    queryset: Any
    request: Any  # the view's (rest_framework.request.Request); Any so that it agrees with Django's View

    def get_queryset(self) -> models.QuerySet[Any]:
        visible: models.QuerySet[Any] = self.queryset.all().visible_to(self.request.user)
        return visible
