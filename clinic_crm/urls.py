from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter, SimpleRouter

from appointments import api as appointments_api
from appointments import sms_webhook
from clinic_crm import portal
from clinic_crm.admin_site import admin_index
from clinic_crm.health import health_view
from clinics import api as clinics_api
from messaging import api as messaging_api
from notifications import api as notifications_api
from notifications import views as notification_views
from patients import api as portal_api
from patients import staff_api
from patients import urls as patient_urls

# The patients' pages, and the portal home assembled above them (clinic_crm.portal), under one namespace.
patient_pages = [*patient_urls.urlpatterns, path("portal/", portal.home, name="home")]

staff = DefaultRouter()
staff.register("clinics", clinics_api.ClinicViewSet, basename="staff-clinic")
staff.register("branches", clinics_api.BranchViewSet, basename="staff-branch")
staff.register("working-hours", clinics_api.WorkingHoursViewSet, basename="staff-workinghours")
staff.register("specialties", clinics_api.SpecialtyViewSet, basename="staff-specialty")
staff.register("services", clinics_api.ServiceViewSet, basename="staff-service")
staff.register("doctors", clinics_api.DoctorViewSet, basename="staff-doctor")
staff.register("tags", clinics_api.TagViewSet, basename="staff-tag")
staff.register("memberships", clinics_api.MembershipViewSet, basename="staff-membership")
staff.register("contacts", staff_api.ContactViewSet, basename="staff-contact")
staff.register("patients", staff_api.PatientViewSet, basename="staff-patient")
staff.register("contact-changes", staff_api.ContactChangeViewSet, basename="staff-contactchange")
staff.register("consent-documents", staff_api.ConsentDocumentViewSet, basename="staff-consentdocument")
staff.register("consent-records", staff_api.ConsentRecordViewSet, basename="staff-consentrecord")
staff.register("audit", staff_api.AuditEventViewSet, basename="staff-audit")
staff.register("canned-answers", messaging_api.CannedAnswerViewSet, basename="staff-cannedanswer")
staff.register("teams", messaging_api.TeamViewSet, basename="staff-team")
staff.register("thread-access", messaging_api.ThreadAccessViewSet, basename="staff-threadaccess")
staff.register("schedule-rules", appointments_api.ScheduleRuleViewSet, basename="staff-schedulerule")
staff.register("schedule-exceptions", appointments_api.ScheduleExceptionViewSet, basename="staff-scheduleexception")
staff.register("booking-rules", appointments_api.BookingRulesViewSet, basename="staff-bookingrules")

conversations = SimpleRouter()
conversations.register("threads", messaging_api.ThreadViewSet, basename="thread")
conversations.register("visits", appointments_api.VisitViewSet, basename="visit")
conversations.register("waitlist", appointments_api.WaitlistViewSet, basename="waitlist")
conversations.register("reminders", notifications_api.ReminderViewSet, basename="reminder")

api: list[URLPattern | URLResolver] = [
    path("auth/code/", portal_api.CodeRequestView.as_view(), name="auth-code"),
    path("auth/verify/", portal_api.CodeVerifyView.as_view(), name="auth-verify"),
    path("auth/logout/", portal_api.LogoutView.as_view(), name="auth-logout"),
    path("me/", portal_api.MeView.as_view(), name="me"),
    path("me/contact-change/", portal_api.ContactChangeRequestView.as_view(), name="me-contact-change"),
    path("me/contact-change/confirm/", portal_api.ContactChangeConfirmView.as_view(), name="me-contact-change-confirm"),
    path("me/family/", portal_api.DependantListView.as_view(), name="me-family"),
    path("me/family/<int:pk>/", portal_api.DependantDetailView.as_view(), name="me-family-detail"),
    path("me/clinics/", portal_api.MyClinicsView.as_view(), name="me-clinics"),
    path("me/export/", portal_api.ExportView.as_view(), name="me-export"),
    path("clinics/", clinics_api.PublicClinicListView.as_view(), name="clinic-list"),
    path("clinics/<slug:slug>/", clinics_api.PublicClinicDetailView.as_view(), name="clinic-detail"),
    path("clinics/<slug:slug>/consent/", portal_api.ClinicConsentView.as_view(), name="clinic-consent"),
    path("clinics/<slug:slug>/contact/", portal_api.ClinicContactView.as_view(), name="clinic-contact"),
    path("clinics/<slug:slug>/slots/", appointments_api.SlotSearchView.as_view(), name="clinic-slots"),
    path("threads/<int:pk>/slots/", appointments_api.ThreadSlotsView.as_view(), name="thread-slots"),
    path("staff/attendance/", appointments_api.AttendanceView.as_view(), name="staff-attendance"),
    path("staff/", include(staff.urls)),
    path("", include(conversations.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    # The admin's paths from before the models took the clinic's words: bookmarks and links in old messages still land.
    re_path(
        r"^admin/appointments/appointment/(?P<rest>.*)$",  # rename: keep
        RedirectView.as_view(url="/admin/appointments/visit/%(rest)s", query_string=True, permanent=True),
    ),
    re_path(
        r"^admin/patients/patientinclinic/(?P<rest>.*)$",  # rename: keep
        RedirectView.as_view(url="/admin/patients/contact/%(rest)s", query_string=True, permanent=True),
    ),
    path("admin/inbox/", include("messaging.admin_inbox")),  # the operator inbox, behind admin_view
    path("admin/calendar/", include("appointments.admin_calendar")),  # the booking calendar, behind admin_view
    path("admin/", admin.site.admin_view(admin_index), name="staff-home"),  # before the admin's own index, which it replaces
    path("admin/", admin.site.urls),
    path("api/", include((api, "api"))),
    path("health/", health_view, name="health"),
    path("notifications/replies/twilio/", sms_webhook.twilio_reply, name="sms-reply-twilio"),  # visits answered by SMS
    path("notifications/", include("notifications.urls")),
    path("anymail/", include("anymail.urls")),  # e-mail providers' delivery reports (notifications.apps connects the signal)
    path("", include("promotions.urls")),
    path("portal/notifications/", notification_views.preferences, name="portal-notifications"),
    path("portal/notifications/reminders/new/", notification_views.reminder_new, name="portal-reminder-new"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("messaging.urls")),
    path("", include("appointments.urls")),
    path("", include((patient_pages, "patients"))),
]

# On /api/ paths Django's own refusals answer in the API's JSON format (clinic_crm.api).
handler400 = "core.api.bad_request"
handler403 = "core.api.permission_denied"
handler404 = "core.api.page_not_found"
handler500 = "core.api.server_error"

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
