"""How a clinic's time zone is named to a patient: «Екатеринбург, UTC+5».

Times are always shown in the clinic's own zone (where the patient has to be). A patient who deals
with clinics in more than one zone sees each time with its zone, so «11:00» in Yekaterinburg and
«09:00» in Moscow are visibly the same moment (patients.selectors.patient_sees_zones decides when).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy as _

# Russia's zones by the city patients know them by; other zones fall back to the city in the zone's name.
ZONE_CITIES = {
    "Europe/Kaliningrad": _("Kaliningrad"),
    "Europe/Moscow": _("Moscow"),
    "Europe/Samara": _("Samara"),
    "Asia/Yekaterinburg": _("Yekaterinburg"),
    "Asia/Omsk": _("Omsk"),
    "Asia/Novosibirsk": _("Novosibirsk"),
    "Asia/Krasnoyarsk": _("Krasnoyarsk"),
    "Asia/Irkutsk": _("Irkutsk"),
    "Asia/Yakutsk": _("Yakutsk"),
    "Asia/Vladivostok": _("Vladivostok"),
    "Asia/Magadan": _("Magadan"),
    "Asia/Kamchatka": _("Petropavlovsk-Kamchatsky"),
}


def zone_label(*, time_zone: str, moment: datetime) -> str:
    """«Екатеринбург, UTC+5» for the zone at that moment (the offset of a zone with summer time depends on the date)."""
    city = ZONE_CITIES.get(time_zone) or time_zone.rsplit("/", 1)[-1].replace("_", " ")
    offset = moment.astimezone(ZoneInfo(time_zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    hours, rest = divmod(abs(minutes), 60)
    sign = "+" if minutes >= 0 else "−"
    return f"{city}, UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
