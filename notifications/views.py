"""Delivery reports and replies from SMS providers, and the portal page where a patient chooses how to be reached.

A report or reply we cannot verify, or a report about a message we never sent, is 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.requests import PortalRequest
from notifications import selectors, services
from notifications.forms import PreferenceForm, ReminderForm
from notifications.models import PersonalReminder
from patients.services import ConsentRequired
from patients.views import patient_required

# SMS.ru status codes: 103 delivered; 104–108 and 150 final failures (expired, rejected, unreachable…).
SMSRU_DELIVERED = {"103"}
SMSRU_FAILED = {"104", "105", "106", "107", "108", "150"}
TWILIO_DELIVERED = {"delivered"}
TWILIO_FAILED = {"failed", "undelivered"}


@csrf_exempt
@require_POST
def smsru_report(request: HttpRequest, secret: str) -> HttpResponse:
    """SMS.ru posts `data[]` lines 'sms_status\\n<id>\\n<status code>'. It cannot sign, so the URL carries a secret."""
    expected = settings.SMSRU_CALLBACK_SECRET
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        return HttpResponseForbidden("unknown sender")
    reports = []
    for entry in request.POST.getlist("data[]"):
        lines = entry.split("\n")
        if len(lines) >= 3 and lines[0] == "sms_status" and lines[2] in SMSRU_DELIVERED | SMSRU_FAILED:
            reports.append((lines[1], lines[2]))
    if not reports:
        return HttpResponse("100")  # SMS.ru's own test ping: acknowledged, nothing to store
    known = [
        services.delivery_report(
            provider="smsru", provider_message_id=sms_id, delivered=code in SMSRU_DELIVERED, error=f"SMS.ru status {code}"
        )
        for sms_id, code in reports
    ]
    if not any(known):
        return HttpResponseForbidden("unknown message")
    return HttpResponse("100")


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted POST parameters."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def twilio_signed_params(request: HttpRequest) -> dict[str, str] | None:
    """The POSTed parameters if Twilio signed them with our auth token, else None (no token configured: nothing is)."""
    token = settings.TWILIO_AUTH_TOKEN
    params = {key: request.POST.get(key, "") for key in request.POST}
    given = request.headers.get("X-Twilio-Signature", "")
    if not token or not hmac.compare_digest(given, twilio_signature(request.build_absolute_uri(), params, token)):
        return None
    return params


@csrf_exempt
@require_POST
def twilio_report(request: HttpRequest) -> HttpResponse:
    params = twilio_signed_params(request)
    if params is None:
        return HttpResponseForbidden("bad signature")
    status = params.get("MessageStatus", "")
    if status not in TWILIO_DELIVERED | TWILIO_FAILED:
        return HttpResponse(status=204)  # queued/sent/sending: nothing final yet
    delivery = services.delivery_report(
        provider="twilio",
        provider_message_id=params.get("MessageSid", ""),
        delivered=status in TWILIO_DELIVERED,
        error=f"Twilio {status} {params.get('ErrorCode', '')}".strip(),
    )
    if delivery is None:
        return HttpResponseForbidden("unknown message")
    return HttpResponse(status=204)


# --- the portal: how to reach me, and my own reminders ---------------------------------------------


def _reminder_save(request: HttpRequest, form: ReminderForm, clinics: list, family: list) -> PersonalReminder | None:
    """Add the reminder of a valid form; a refusal goes onto the form (None), as the person should read it there."""
    data = form.cleaned_data
    clinic = next(c for c in clinics if str(c.pk) == data["clinic"])
    person = next(p for p in family if str(p.pk) == data["patient"])
    try:
        return services.personal_reminder_add(
            actor=request.user, patient=person, clinic=clinic, text=data["text"],
            next_at=datetime.combine(data["day"], data["at"], tzinfo=clinic.tz), repeat=data["repeat"],
            repeat_until=data["repeat_until"],
        )  # fmt: skip
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    except (PermissionDenied, ConsentRequired) as exc:
        form.add_error(None, str(exc))
    return None


@patient_required
def preferences(request: PortalRequest) -> HttpResponse:
    patient = request.patient
    clinics = selectors.reminder_clinics(patient=patient)
    family = selectors.reminder_family(patient=patient)
    current = selectors.preference_for(user=request.user)
    preference_form = PreferenceForm(
        request.POST if request.POST.get("form") == "preferences" else None,
        initial={"sms": current.sms, "email": current.email, "promotions": current.promotions, "opted_out": current.opted_out},
    )
    reminder_form = ReminderForm(request.POST if request.POST.get("form") == "reminder" else None, clinics=clinics, family=family)
    if request.method == "POST":
        if request.POST.get("form") == "preferences" and preference_form.is_valid():
            services.preference_update(user=request.user, **preference_form.cleaned_data)
            messages.success(request, _("Saved."))
            return redirect("portal-notifications")
        if request.POST.get("form") == "cancel":
            reminder = selectors.reminder_of(patient=patient, reminder_id=request.POST.get("reminder", ""))
            if reminder is not None:
                services.personal_reminder_cancel(actor=request.user, reminder=reminder)
                messages.success(request, _("Reminder removed."))
            return redirect("portal-notifications")
        if request.POST.get("form") == "reminder" and reminder_form.is_valid() and _reminder_save(request, reminder_form, clinics, family):
            messages.success(request, _("Reminder set."))
            return redirect("portal-notifications")
    return render(
        request,
        "notifications/preferences.html",
        {
            "patient": patient,
            "preference_form": preference_form,
            "reminder_form": reminder_form,
            "reminders": selectors.reminders_of(patient=patient),
        },
    )


@patient_required
def reminder_new(request: PortalRequest) -> HttpResponse:
    """The reminder form on its own page, opened from a conversation ("Remind me" under a message, or the header).

    `thread` and `message` (its seq) prefill the form; they count only for a thread of
    the patient's family (selectors.reminder_source). Saving returns to that thread.
    """
    patient = request.patient
    clinics = selectors.reminder_clinics(patient=patient)
    family = selectors.reminder_family(patient=patient)
    params = request.POST if request.method == "POST" else request.GET
    source = selectors.reminder_source(
        user=request.user, patient=patient, thread_id=params.get("thread", ""), message_seq=params.get("message", "")
    )
    back = reverse("messaging:portal-thread", args=[source.thread.pk]) + "#latest" if source.thread else reverse("portal-notifications")
    form = ReminderForm(request.POST if request.method == "POST" else None, clinics=clinics, family=family, initial=source.initial)
    if source.initial.get("text") or request.method == "POST":
        form.fields["text"].widget.attrs["rows"] = 7  # a message's words (up to 200 characters) shown whole at 360 px
    if request.method == "POST" and form.is_valid() and (reminder := _reminder_save(request, form, clinics, family)):
        when = formats.date_format(timezone.localtime(reminder.next_at, reminder.clinic.tz), "j E, H:i")
        messages.success(request, _("Reminder set for %(when)s.") % {"when": when})
        return redirect(back)
    return render(
        request,
        "notifications/reminder_new.html",
        {
            "form": form,
            "thread": source.thread,
            "message_seq": params.get("message", "") if source.thread and params.get("message", "").isdigit() else "",
            "back": back,
        },
        status=400 if form.errors else 200,
    )
