"""Portal pages (mobile first). Each view reads through selectors and writes through services.

The portal home shows threads and promotions from apps above patients: it is assembled in clinic_crm/portal.py."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.destinations import parse_destination
from accounts.services import LoginCodeError
from clinics.models import Clinic
from clinics.selectors import clinic_get_public, clinics_public
from core.errors import one_line
from core.requests import PortalRequest, client_ip, referrer, user_agent
from patients import selectors, services
from patients.forms import CodeForm, ConsentForm, DependantForm, DestinationForm, ProfileForm

SESSION_DESTINATION = "portal_code_destination"
SESSION_CHANGE = "portal_contact_change"
SESSION_ATTRIBUTION = "portal_attribution"


def patient_required(view):
    """Sign-in wall for portal pages; staff accounts have no patient profile and are sent to the admin."""

    @wraps(view)
    def wrapper(request: PortalRequest, *args, **kwargs):
        patient = selectors.patient_for_user(request.user)
        if patient is None:
            if request.user.is_authenticated:
                return redirect("admin:index")
            return redirect(f"{reverse('patients:login')}?{urlencode({'next': request.get_full_path()}, safe='/')}")
        request.patient = patient
        return view(request, *args, **kwargs)

    return wrapper


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _get_clinic(slug: str) -> Clinic:
    try:
        return clinic_get_public(slug=slug)
    except Clinic.DoesNotExist:
        raise Http404(_("No such clinic.")) from None


def landing(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "patients/landing.html",
        {"clinics": clinics_public(), "patient": selectors.patient_for_user(request.user)},
    )


def clinic_page(request: HttpRequest, slug: str) -> HttpResponse:
    clinic = _get_clinic(slug)
    # Keep where the visitor came from until they become a contact (first-touch attribution).
    if any(key in request.GET for key in services.Attribution.UTM_KEYS) or request.META.get("HTTP_REFERER"):
        stored = request.session.get(SESSION_ATTRIBUTION, {})
        stored.setdefault(
            slug,
            {
                "utm": {k: request.GET[k][:100] for k in services.Attribution.UTM_KEYS if request.GET.get(k)},
                "referrer": referrer(request),
            },
        )
        request.session[SESSION_ATTRIBUTION] = stored
    patient = selectors.patient_for_user(request.user)
    return render(
        request,
        "patients/clinic.html",
        {
            "clinic": clinic,
            "patient": patient,
            "consent_given": patient is not None and selectors.consent_is_given(patient=patient, clinic=clinic),
        },
    )


def login_start(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        destination = form.cleaned_data["destination"]
        try:
            services.portal_code_request(destination=destination, ip=client_ip(request))
        except LoginCodeError as exc:
            form.add_error("destination", exc.message)
        else:
            request.session[SESSION_DESTINATION] = destination.value
            return redirect(
                f"{reverse('patients:login-code')}?{urlencode({'next': _next_url(request, reverse('patients:home'))}, safe='/')}"
            )
    return render(request, "patients/login.html", {"form": form, "next": _next_url(request, "")})


def login_code(request: HttpRequest) -> HttpResponse:
    raw = request.session.get(SESSION_DESTINATION)
    if not raw:
        return redirect("patients:login")
    destination = parse_destination(raw)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient, created = services.portal_sign_in(destination=destination, code=form.cleaned_data["code"], ip=client_ip(request))
        except LoginCodeError as exc:
            form.add_error("code", exc.message)
        else:
            login(request, patient.user, backend="django.contrib.auth.backends.ModelBackend")
            request.session.pop(SESSION_DESTINATION, None)
            if created or not patient.full_name:
                return redirect(
                    f"{reverse('patients:profile')}?{urlencode({'next': _next_url(request, reverse('patients:home'))}, safe='/')}"
                )
            return redirect(_next_url(request, reverse("patients:home")))
    return render(request, "patients/login_code.html", {"form": form, "destination": destination, "next": _next_url(request, "")})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("patients:landing")


@patient_required
def consent(request: PortalRequest, slug: str) -> HttpResponse:
    clinic = _get_clinic(slug)
    document = selectors.consent_current_document(clinic=clinic)
    if document is None:
        raise Http404(_("This clinic has not published its consent text yet."))
    form = ConsentForm(request.POST or None, initial={"version": document.version})
    if request.method == "POST" and form.is_valid():
        stored = request.session.get(SESSION_ATTRIBUTION, {}).get(slug, {})
        try:
            services.clinic_join(
                patient=request.patient,
                clinic=clinic,
                document_version=form.cleaned_data["version"],
                attribution=services.Attribution(utm=stored.get("utm", {}), referrer=stored.get("referrer", "")),
                ip=client_ip(request),
                user_agent=user_agent(request),
            )
        except services.ConsentOutdated as exc:
            messages.warning(request, str(exc))
            return redirect("patients:consent", slug=slug)
        messages.success(request, _("Thank you. %(clinic)s is now in your list.") % {"clinic": clinic.name})
        return redirect(_next_url(request, reverse("patients:home")))
    return render(
        request,
        "patients/consent.html",
        {
            "clinic": clinic,
            "document": document,
            "form": form,
            "given": selectors.consent_is_given(patient=request.patient, clinic=clinic),
            "next": _next_url(request, ""),
        },
    )


@require_POST
@patient_required
def consent_withdraw(request: PortalRequest, slug: str) -> HttpResponse:
    clinic = _get_clinic(slug)
    try:
        services.consent_withdraw(patient=request.patient, clinic=clinic, ip=client_ip(request), user_agent=user_agent(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, _("Consent withdrawn. %(clinic)s will no longer process your data or write to you.") % {"clinic": clinic.name}
        )
    return redirect("patients:home")


@patient_required
def profile(request: PortalRequest) -> HttpResponse:
    patient = request.patient
    form = ProfileForm(request.POST or None, initial={"full_name": patient.full_name, "birth_date": patient.birth_date})
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update_profile(patient=patient, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect(_next_url(request, reverse("patients:home")))
    return render(
        request,
        "patients/profile.html",
        {"form": form, "patient": patient, "change_form": DestinationForm(), "next": _next_url(request, "")},
    )


@patient_required
def contact_change(request: PortalRequest) -> HttpResponse:
    """Two steps on one URL: send a code to the new value, then confirm it."""
    patient = request.patient
    pending = request.session.get(SESSION_CHANGE)
    if request.method == "POST" and "destination" in request.POST:
        form = DestinationForm(request.POST)
        if form.is_valid():
            try:
                services.patient_contact_change_request(
                    patient=patient, destination=form.cleaned_data["destination"], ip=client_ip(request)
                )
            except (ValidationError, LoginCodeError) as exc:
                form.add_error("destination", exc.message if isinstance(exc, LoginCodeError) else one_line(exc))
            else:
                request.session[SESSION_CHANGE] = form.cleaned_data["destination"].value
                return redirect("patients:contact-change")
        return render(request, "patients/contact_change.html", {"form": form, "pending": None})
    if pending:
        code_form = CodeForm(request.POST or None)
        if request.method == "POST" and code_form.is_valid():
            try:
                services.patient_contact_change_confirm(
                    patient=patient, destination=parse_destination(pending), code=code_form.cleaned_data["code"], ip=client_ip(request)
                )
            except (ValidationError, LoginCodeError) as exc:
                code_form.add_error("code", exc.message if isinstance(exc, LoginCodeError) else one_line(exc))
            else:
                request.session.pop(SESSION_CHANGE, None)
                messages.success(request, _("Your contact is changed. Your clinics and conversations stay with you."))
                return redirect("patients:profile")
        return render(request, "patients/contact_change.html", {"code_form": code_form, "pending": pending})
    return render(request, "patients/contact_change.html", {"form": DestinationForm(), "pending": None})


@patient_required
def family(request: PortalRequest) -> HttpResponse:
    form = DependantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.dependant_add(guardian=request.patient, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("Family member added."))
            return redirect("patients:family")
    return render(request, "patients/family.html", {"form": form, "family": selectors.patient_family(patient=request.patient)[1:]})


@patient_required
def export(request: PortalRequest) -> HttpResponse:
    response = JsonResponse(selectors.patient_export(patient=request.patient), json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, [m for e in errors for m in e.messages])
    else:
        form.add_error(None, exc.messages)
