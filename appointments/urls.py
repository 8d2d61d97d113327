from django.urls import path

from appointments import views

app_name = "appointments"

urlpatterns = [
    path("c/<slug:slug>/book/", views.book_start, name="book"),
    path("c/<slug:slug>/book/<int:service_id>/", views.book_slots, name="book-slots"),
    path("c/<slug:slug>/book/<int:service_id>/waitlist/", views.waitlist_join, name="waitlist-join"),
    path("portal/book/<slug:slug>/confirm/", views.book_confirm, name="book-confirm"),
    path("portal/visits/", views.my_visits, name="my-visits"),
    path("portal/visits/<int:pk>/", views.visit_detail, name="visit"),
    path("portal/visits/<int:pk>/calendar.ics", views.visit_calendar, name="visit-calendar"),
    path("portal/visits/<int:pk>/cancel/", views.visit_cancel, name="visit-cancel"),
    path("portal/visits/<int:pk>/confirm/", views.visit_confirm, name="visit-confirm"),
    path("portal/waitlist/<int:pk>/leave/", views.waitlist_leave, name="waitlist-leave"),
    path("v/<str:token>/", views.visit_link, name="visit-link"),
]
