from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("files/<int:pk>/", views.attachment, name="attachment"),
    path("files/<int:pk>/thumbnail/", views.attachment_thumbnail, name="attachment-thumbnail"),
    # The patient portal chat.
    path("portal/threads/start/", views.portal_start, name="portal-start"),
    path("portal/clinics/<slug:slug>/write/", views.portal_write, name="portal-write"),
    path("portal/threads/<int:pk>/", views.portal_thread, name="portal-thread"),
    path("portal/threads/<int:pk>/send/", views.portal_send, name="portal-send"),
]
