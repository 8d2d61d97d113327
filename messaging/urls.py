from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("files/<int:pk>/", views.attachment, name="attachment"),
    path("files/<int:pk>/thumbnail/", views.attachment_thumbnail, name="attachment-thumbnail"),
]
