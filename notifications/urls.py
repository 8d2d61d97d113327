from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("reports/smsru/<str:secret>/", views.smsru_report, name="report-smsru"),
    path("reports/twilio/", views.twilio_report, name="report-twilio"),
]
