"""`{{ moment|zone_label:clinic.time_zone }}` → «Екатеринбург, UTC+5» (clinics.zones)."""

from __future__ import annotations

from datetime import datetime

from django import template

from clinics.zones import zone_label as _zone_label

register = template.Library()


@register.filter
def zone_label(moment: datetime, time_zone: str) -> str:
    if not moment or not time_zone:
        return ""
    return _zone_label(time_zone=time_zone, moment=moment)
