from django.urls import path

from promotions import views

app_name = "promotions"

urlpatterns = [
    path("portal/promotions/", views.promotion_list, name="promotion-list"),
    path("portal/promotions/<int:pk>/", views.promotion, name="promotion"),
]
