from django.contrib import admin

from audit.models import AuditEvent
from clinics.tenancy.admin import ReadOnlyTenantAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("at", "actor", "clinic", "action", "target", "patient")
    list_filter = ("clinic", "action")
    list_select_related = ("actor", "clinic", "patient")
    search_fields = ("action", "target", "actor__username")
