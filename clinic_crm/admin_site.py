"""Unfold callbacks: the header shows the staff member's clinic, the sidebar only what their role may open.

The admin site is assembled from every app's screens (the inbox, the calendar, the outbox…), so it lives in the
project package at the top of the layers, not in clinics."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext_lazy as _

from clinics.selectors import staff_clinics
from clinics.tenancy import CLINIC_ADMINS, Role, can_view_any, clinic_roles, clinics_with_role, is_staff_member
from messaging.admin_inbox import inbox_badge


def site_header(request) -> str:
    if not request.user.is_authenticated:
        return str(_("Clinic CRM"))
    names = [clinic.name for clinic in staff_clinics(user=request.user)]
    if names:
        return ", ".join(names)
    return str(_("Clinic CRM — platform")) if request.user.is_superuser else str(_("Clinic CRM"))


def site_subheader(request) -> str:
    roles = sorted({role.label for role in clinic_roles(request.user).values()}) if request.user.is_authenticated else []
    if roles:
        return " · ".join(str(r) for r in roles)
    return str(_("Platform administrator")) if getattr(request.user, "is_superuser", False) else ""


def staff_landing(request: HttpRequest) -> str | None:
    """Where a staff member starts: owners at attendance (their figures, until the owner dashboard exists),
    everyone else in the clinic at the inbox. None for the platform, whose start is the admin index."""
    if request.user.is_superuser:
        return None
    roles = set(clinic_roles(request.user).values())
    if Role.OWNER in roles:
        return reverse("calendar:attendance")
    return reverse("inbox:index") if roles else None


def admin_index(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin's home page: clinic staff go straight to their working screen (the login lands here too)."""
    landing = staff_landing(request)
    if landing is not None:
        return HttpResponseRedirect(landing)
    return admin.site.index(request, extra_context)


def _model_item(title, icon: str, app_label: str, model_name: str, model_path: str) -> dict:
    def permission(request) -> bool:
        from django.apps import apps

        return can_view_any(request.user, apps.get_model(model_path))

    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app_label}_{model_name}_changelist"),
        "permission": permission,
    }


def _superuser(request) -> bool:
    return request.user.is_superuser


def _staff_member(request) -> bool:
    return is_staff_member(request.user)


def _calendar_active(request) -> bool:
    """The calendar's pages, but not attendance, which lives under the same prefix and has its own item."""
    return request.path.startswith(reverse("calendar:day")) and not request.path.startswith(reverse("calendar:attendance"))


def _clinic_admin(request) -> bool:
    return request.user.is_superuser or bool(clinics_with_role(request.user, CLINIC_ADMINS))


def _inbox_item(request) -> dict:
    """The inbox, with the number of threads awaiting a reply as its badge (none when zero)."""
    item = {"title": _("Inbox"), "icon": "forum", "link": reverse_lazy("inbox:index"), "permission": _staff_member}
    if request.user.is_authenticated and _staff_member(request) and inbox_badge(request):
        item.update(badge="messaging.admin_inbox.inbox_badge", badge_variant="danger", badge_style="solid")
    return item


def _conversations(request) -> dict:
    """Threads, the outbox and promotions: where the front desk works."""
    return {
        "title": _("Conversations"),
        "items": [
            _inbox_item(request),
            _model_item(_("All conversations"), "chat", "messaging", "thread", "messaging.Thread"),
            _model_item(_("Canned answers"), "quickreply", "messaging", "cannedanswer", "messaging.CannedAnswer"),
            _model_item(_("Teams"), "groups", "messaging", "team", "messaging.Team"),
            _model_item(_("Access log"), "visibility", "messaging", "threadaccess", "messaging.ThreadAccess"),
            _model_item(_("Notifications"), "notifications", "notifications", "notification", "notifications.Notification"),
            _model_item(_("Deliveries"), "outgoing_mail", "notifications", "delivery", "notifications.Delivery"),
            _model_item(_("Promotions"), "campaign", "promotions", "promotion", "promotions.Promotion"),
        ],
    }


def _booking() -> dict:
    """The calendar and everything a visit is booked from."""
    return {
        "title": _("Booking"),
        "items": [
            {
                "title": _("Calendar"),
                "icon": "calendar_month",
                "link": reverse_lazy("calendar:day"),
                "permission": _staff_member,
                "active": _calendar_active,
            },
            {"title": _("Attendance"), "icon": "monitoring", "link": reverse_lazy("calendar:attendance"), "permission": _clinic_admin},
            _model_item(_("Visits"), "event", "appointments", "visit", "appointments.Visit"),
            _model_item(_("Waiting list"), "hourglass_top", "appointments", "waitlistentry", "appointments.WaitlistEntry"),
            _model_item(_("Weekly schedule"), "view_week", "appointments", "schedulerule", "appointments.ScheduleRule"),
            _model_item(_("Schedule exceptions"), "event_busy", "appointments", "scheduleexception", "appointments.ScheduleException"),
            _model_item(_("Booking rules"), "rule", "appointments", "bookingrules", "appointments.BookingRules"),
            _model_item(_("Freed-slot offers"), "campaign", "appointments", "slotoffer", "appointments.SlotOffer"),
        ],
    }


def _patients() -> dict:
    """People and their clinic contact cards."""
    return {
        "title": _("Patients"),
        "items": [
            _model_item(_("Clinic contacts"), "contacts", "patients", "contact", "patients.Contact"),
            _model_item(_("Patients"), "person", "patients", "patient", "patients.Patient"),
            _model_item(_("Contact history"), "history", "patients", "contactchange", "patients.ContactChange"),
        ],
    }


def _clinic() -> dict:
    """The set-up of a clinic: branches, hours, doctors, services, staff."""
    return {
        "title": _("Clinic"),
        "items": [
            _model_item(_("Clinics"), "local_hospital", "clinics", "clinic", "clinics.Clinic"),
            _model_item(_("Branches"), "apartment", "clinics", "branch", "clinics.Branch"),
            _model_item(_("Working hours"), "schedule", "clinics", "workinghours", "clinics.WorkingHours"),
            _model_item(_("Doctors"), "stethoscope", "clinics", "doctor", "clinics.Doctor"),
            _model_item(_("Specialties"), "category", "clinics", "specialty", "clinics.Specialty"),
            _model_item(_("Services"), "medical_services", "clinics", "service", "clinics.Service"),
            _model_item(_("Tags"), "sell", "clinics", "tag", "clinics.Tag"),
            _model_item(_("Staff"), "badge", "clinics", "membership", "clinics.Membership"),
        ],
    }


def _personal_data() -> dict:
    """What 152-FZ asks to keep: consent texts and log, the audit log."""
    return {
        "title": _("Personal data"),
        "items": [
            _model_item(_("Consent texts"), "description", "patients", "consentdocument", "patients.ConsentDocument"),
            _model_item(_("Consent log"), "verified_user", "patients", "consentrecord", "patients.ConsentRecord"),
            _model_item(_("Audit log"), "policy", "audit", "auditevent", "audit.AuditEvent"),
        ],
    }


def _platform() -> dict:
    """The platform administrator's own pages."""
    return {
        "title": _("Platform"),
        "items": [
            {
                "title": _("Users"),
                "icon": "manage_accounts",
                "link": reverse_lazy("admin:accounts_user_changelist"),
                "permission": _superuser,
            },
            {
                "title": _("Timed jobs"),
                "icon": "timer",
                "link": reverse_lazy("admin:django_celery_beat_periodictask_changelist"),
                "permission": _superuser,
            },
            {
                "title": _("Login lockouts"),
                "icon": "lock",
                "link": reverse_lazy("admin:axes_accessattempt_changelist"),
                "permission": _superuser,
            },
        ],
    }


def sidebar_navigation(request) -> list[dict]:
    """The sidebar: one group per area, each item shown only to roles that may open it."""
    return [_conversations(request), _booking(), _patients(), _clinic(), _personal_data(), _platform()]
