from typing import Any

from django.db import models

from audit.models import AuditEvent


def audit_record(
    *,
    actor: Any,
    action: str,
    clinic: Any = None,
    patient: Any = None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Write one audit row. Call inside the caller's transaction so both land or neither."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        clinic=clinic,
        patient=patient,
        target=f"{target._meta.label}:{target.pk}" if target is not None else "",
        data=data or {},
        ip=ip,
    )
