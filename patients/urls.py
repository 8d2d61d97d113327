from django.urls import path

from patients import views

app_name = "patients"

# The portal home (portal/, patients:home) gathers threads and promotions: clinic_crm/portal.py, added in clinic_crm/urls.py.

urlpatterns = [
    path("", views.landing, name="landing"),
    path("c/<slug:slug>/", views.clinic_page, name="clinic"),
    path("login/", views.login_start, name="login"),
    path("login/code/", views.login_code, name="login-code"),
    path("logout/", views.logout_view, name="logout"),
    path("portal/clinics/<slug:slug>/consent/", views.consent, name="consent"),
    path("portal/clinics/<slug:slug>/consent/withdraw/", views.consent_withdraw, name="consent-withdraw"),
    path("portal/profile/", views.profile, name="profile"),
    path("portal/profile/contact/", views.contact_change, name="contact-change"),
    path("portal/family/", views.family, name="family"),
    path("portal/export/", views.export, name="export"),
]
