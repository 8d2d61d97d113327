"""Files of threads (served only to people who may see their message) and the portal chat pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from clinics.models import Clinic
from clinics.selectors import clinic_get_public
from clinics.zones import zone_label
from core.client_input import whole_number
from core.errors import one_line, refusal_text
from messaging import fragments, selectors, services
from messaging.fragments import HtmxHttpRequest
from messaging.models import Attachment, Thread
from messaging.payloads import PATIENT, message_item
from patients.models import Patient
from patients.selectors import consent_is_given, patient_dependant_get, patient_sees_zones
from patients.services import Attribution, ConsentRequired
from patients.views import patient_required


def _serve(attachment: Attachment, field: str, *, inline: bool) -> FileResponse:
    stored = getattr(attachment, field)
    if not stored:
        raise Http404
    content_type = "image/jpeg" if field == "thumbnail" else attachment.content_type
    response = FileResponse(stored.open("rb"), content_type=content_type, as_attachment=not inline, filename=attachment.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # A PDF opened inline runs in the browser's viewer; never let it script our origin.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    return response


def _visible(request: HttpRequest, pk: int) -> Attachment:
    try:
        return selectors.attachment_for(user=request.user, attachment_id=pk)
    except Attachment.DoesNotExist:
        raise Http404 from None


@require_GET
@login_required(login_url="/login/")
def attachment(request: HttpRequest, pk: int) -> FileResponse:
    found = _visible(request, pk)
    return _serve(found, "file", inline=found.is_image or request.GET.get("inline") == "1")


@require_GET
@login_required(login_url="/login/")
def attachment_thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    return _serve(_visible(request, pk), "thumbnail", inline=True)


# --- portal chat (patients) -----------------------------------------------------------------
#
# The thread page renders the history on the server and works as a plain form without
# JavaScript; clinic_crm/static/portal/chat.js then takes over sending, live updates and
# the rest over the socket (clinic_crm/static/realtime/socket.js).


def _consent_redirect(request: HttpRequest, clinic: Clinic, next_url: str) -> HttpResponse:
    messages.warning(request, str(ConsentRequired(clinic)))
    return redirect(f"{reverse('patients:consent', args=[clinic.slug])}?{urlencode({'next': next_url})}")


def _thread_url(thread: Thread) -> str:
    return reverse("messaging:portal-thread", args=[thread.pk]) + "#latest"


class PortalRequest(HtmxHttpRequest):
    """A portal page's request: `patient_required` puts the signed-in person (the account holder) on it."""

    patient: Patient


@dataclass(frozen=True)
class _History:
    """A page of the patient's history as the template places it."""

    items: list[dict[str, Any]]
    has_more: bool
    before: int | None
    unread_from: int | None  # the first message not read yet gets a "New messages" line above it

    @property
    def first_seq(self) -> int:
        return self.items[0]["seq"] if self.items else 0


def _history(request: HttpRequest, thread: Thread) -> _History:
    """The newest page, or the one before ?before=<seq>, each message through the patient's side of messaging.fragments."""
    before_seq = whole_number(request.GET.get("before", ""))
    page = selectors.thread_messages(user=request.user, thread=thread, before_seq=before_seq, limit=selectors.PAGE + 1)
    has_more, page = len(page) > selectors.PAGE, page[-selectors.PAGE :]
    with_slots = any(m.data and m.data.get("slots") for m in page)
    side = fragments.PatientSide(thread, with_slots=with_slots, events=selectors.thread_visit_events(thread=thread) if with_slots else [])
    items = [side.item(m, message_item(m, audience=PATIENT, thread=thread)) for m in page]
    unread_from = next((item["seq"] for item in items if not item["mine"] and item["seq"] > thread.patient_read_seq), None)
    return _History(items=items, has_more=has_more, before=before_seq, unread_from=unread_from)


def _heading(request: PortalRequest, thread: Thread) -> dict[str, str]:
    """Title, subtitle, "for <family member>" and the typing line of the chat header."""
    for_name = thread.patient.full_name if thread.patient_id != request.patient.pk else ""
    if thread.kind == Thread.Kind.DOCTOR and thread.doctor is not None:
        name = thread.doctor.full_name
        return {
            "title": name,
            "subtitle": thread.clinic.name,
            "for_name": for_name,
            "typing_text": _("%(name)s is typing…") % {"name": name},
        }
    return {"title": thread.clinic.name, "subtitle": "", "for_name": for_name, "typing_text": _("Clinic is typing…")}


def _chat_strings(thread: Thread) -> dict[str, Any]:
    """The words chat.js says itself (states, errors, booking results), in the page's language."""
    zone = zone_label(time_zone=thread.clinic.time_zone, moment=timezone.now()) if patient_sees_zones(patient=thread.patient) else ""
    return {
        "today": _("Today"),
        "yesterday": _("Yesterday"),
        "sending": _("Sending…"),
        "sent": _("Sent"),
        "delivered": _("Delivered"),
        "read": _("Read"),
        "reconnecting": _("Connection lost, reconnecting…"),
        "online": _("Back online"),
        "signedOut": _("You are signed out. Reload the page to sign in again."),
        "uploading": _("Uploading…"),
        "uploadFailed": _("The file could not be uploaded. Try again."),
        "waitUpload": _("Wait until the files are uploaded."),
        "removeFile": _("Remove file"),
        "notSent": _("Not sent"),
        "earlierFailed": _("Could not load earlier messages. Try again."),
        "booking": _("Booking…"),
        "booked": _("Booked. The confirmation will appear in this chat."),
        "taken": _("This time has just been taken. Nearest free times:"),
        "openVisit": _("Open the visit"),
        "bookFailed": _("Could not book. Try again."),
        "giveConsent": _("Read and accept the consent"),
        "offerClosed": fragments.offer_closed_reasons(),
        "zone": zone,
    }


def _render_thread(request: PortalRequest, thread: Thread, *, draft: str = "", error: str = "", status: int = 200) -> HttpResponse:
    """The chat page; for htmx (chat.js loading earlier messages) only the bubbles of the page asked for."""
    history = _history(request, thread)
    if request.htmx:
        return render(request, "messaging/_portal_history.html", {"thread": thread, "history": history})
    return render(
        request,
        "messaging/portal_thread.html",
        {
            "thread": thread,
            "reminder_url": fragments.reminder_url(thread),
            **_heading(request, thread),
            "history": history,
            "items": history.items,
            "has_more": history.has_more,
            "before": history.before,
            "first_seq": history.first_seq,
            "unread_from": history.unread_from,
            "last_seq": thread.last_public_seq,
            "draft": draft,
            "error": error,
            "client_msg_id": uuid.uuid4().hex,
            "strings": _chat_strings(thread),
            "accept": "image/jpeg,image/png,image/webp,image/heic,image/heif,.heic,.heif,application/pdf",
        },
        status=status,
    )


@patient_required
def portal_thread(request: PortalRequest, pk: int) -> HttpResponse:
    thread = selectors.thread_for(user=request.user, thread_id=pk)  # 404 for another family's or clinic's thread
    if not consent_is_given(patient=thread.patient, clinic=thread.clinic):
        return _consent_redirect(request, thread.clinic, reverse("messaging:portal-thread", args=[thread.pk]))
    return _render_thread(request, thread)


@require_POST
@patient_required
def portal_send(request: PortalRequest, pk: int) -> HttpResponse:
    """The composer without JavaScript: upload the picked file (if any), send, back to the thread."""
    thread = selectors.thread_for(user=request.user, thread_id=pk)  # 404 for another family's or clinic's thread
    text = request.POST.get("text", "")
    upload = request.FILES.get("file")
    try:
        attachment_ids = [services.attachment_upload(thread=thread, actor=request.user, upload=upload).pk] if upload else []
        services.send_message(
            thread=thread,
            actor=request.user,
            text=text,
            client_msg_id=request.POST.get("client_msg_id", "")[:64],
            attachment_ids=attachment_ids,
        )
    except ConsentRequired:
        return _consent_redirect(request, thread.clinic, reverse("messaging:portal-thread", args=[thread.pk]))
    except services.SendingTooFast as exc:
        return _render_thread(request, thread, draft=text, error=str(exc), status=429)
    except ValidationError as exc:
        return _render_thread(request, thread, draft=text, error=one_line(exc), status=400)
    except PermissionDenied as exc:
        return _render_thread(request, thread, draft=text, error=str(exc) or _("You cannot write here."), status=403)
    return redirect(_thread_url(thread))


def _write_url(clinic: Clinic, *, doctor=None, person=None, holder=None) -> str:
    query = {}
    if doctor is not None:
        query["doctor"] = doctor.pk
    if person is not None and holder is not None and person.pk != holder.pk:
        query["for"] = person.pk
    url = reverse("messaging:portal-write", args=[clinic.slug])
    return f"{url}?{urlencode(query)}" if query else url


@require_GET
@patient_required
def portal_write(request: PortalRequest, slug: str) -> HttpResponse:
    """A link into the conversation with a clinic (or one of its doctors): «Contact this clinic», and where the
    consent page sends the patient afterwards. Finds the conversation, or opens it (nothing is sent), once the
    clinic has the person's consent; before that, the consent page, which comes back here."""
    holder = request.patient
    try:
        clinic = clinic_get_public(slug=slug)
    except Clinic.DoesNotExist:
        raise Http404(_("No such clinic.")) from None
    person = holder
    person_id = request.GET.get("for", "")
    if person_id.isdigit() and int(person_id) != holder.pk:
        try:
            person = patient_dependant_get(guardian=holder, dependant_id=int(person_id))
        except Patient.DoesNotExist:
            raise Http404(_("This person is not in your family.")) from None
    doctor = None
    doctor_id = request.GET.get("doctor", "")
    if doctor_id:
        doctor = selectors.portal_doctors_to_write(clinic=clinic).filter(pk=int(doctor_id) if doctor_id.isdigit() else 0).first()
        if doctor is None:
            raise Http404(_("This doctor does not answer questions in this clinic."))
    if not consent_is_given(patient=person, clinic=clinic):
        return redirect(f"{reverse('patients:consent', args=[clinic.slug])}?{urlencode({'next': request.get_full_path()})}")
    try:
        thread, _created = services.thread_open(
            patient=person, clinic=clinic, doctor=doctor, actor=request.user, attribution=Attribution(source_channel="web")
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, refusal_text(exc))
        return redirect("patients:home")
    return redirect(_thread_url(thread))


@require_POST
@patient_required
def portal_start(request: PortalRequest) -> HttpResponse:
    """The portal home's "Write to the clinic" / "Write to the doctor": open (or find) the thread and go there."""
    holder = request.patient
    home = reverse("patients:home")
    try:
        clinic = clinic_get_public(slug=request.POST.get("clinic", ""))
    except Clinic.DoesNotExist:
        raise Http404(_("No such clinic.")) from None
    person = holder
    person_id = request.POST.get("patient", "")
    if person_id and person_id != str(holder.pk):
        try:
            person = patient_dependant_get(guardian=holder, dependant_id=int(person_id))
        except (ValueError, Patient.DoesNotExist):
            messages.error(request, _("This person is not in your family."))
            return redirect(home)
    doctor = None
    doctor_id = request.POST.get("doctor", "")
    if doctor_id:
        doctor = selectors.portal_doctors_to_write(clinic=clinic).filter(pk=whole_number(doctor_id) or 0).first()
        if doctor is None:
            messages.error(request, _("This doctor does not answer questions in this clinic."))
            return redirect(home)
    try:
        thread, _created = services.thread_open(
            patient=person, clinic=clinic, doctor=doctor, actor=request.user, attribution=Attribution(source_channel="web")
        )
    except ConsentRequired:
        # After the consent the patient lands in the conversation they asked for, not on the home page.
        return _consent_redirect(request, clinic, _write_url(clinic, doctor=doctor, person=person, holder=holder))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, refusal_text(exc))
        return redirect(home)
    return redirect(_thread_url(thread))
