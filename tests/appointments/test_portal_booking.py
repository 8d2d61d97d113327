"""The portal's booking screens, driven like a browser without JavaScript: service → day → time → confirm."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.utils import timezone

from appointments.models import BookingRules, Visit
from clinics.models import Specialty
from tests import factories as f
from tests.conftest import at

pytestmark = pytest.mark.django_db


def confirm_url(clinic, service, doctor, moment, **extra) -> str:
    query = urlencode({"service": service.pk, "doctor": doctor.pk, "at": f"{moment.astimezone(clinic.tz):%Y-%m-%dT%H:%M}", **extra})
    return f"/portal/book/{clinic.slug}/confirm/?{query}"


@pytest.fixture
def signed_in(web, anna, anna_thread):
    web.force_login(anna.user)
    return web


# --- choosing --------------------------------------------------------------------------------


def test_services_are_grouped_by_specialty_and_can_be_narrowed_to_a_doctor(web, alpha, checkup):
    teeth = Specialty.objects.create(clinic=alpha.clinic, name="Dentistry")
    cleaning = f.ServiceFactory(clinic=alpha.clinic, name="Cleaning", specialty=teeth, price_rub=2500)
    other = f.DoctorFactory(clinic=alpha.clinic, full_name="Dr Other")
    other.services.add(cleaning)
    f.ServiceFactory(clinic=alpha.clinic, name="Nobody does it")  # no doctor: not bookable

    page = web.get("/c/alpha/book/").content.decode()
    assert "Dentistry" in page and "Cleaning" in page and "2500 RUB" in page and "Check-up" in page
    assert "Nobody does it" not in page
    narrowed = web.get(f"/c/alpha/book/?doctor={alpha.doctor.pk}").content.decode()
    assert "Check-up" in narrowed and "Cleaning" not in narrowed


def test_the_clinic_page_and_the_portal_home_lead_to_booking(web, alpha, anna, anna_thread):
    assert 'href="/c/alpha/book/"' in web.get("/c/alpha/").content.decode()
    web.force_login(anna.user)
    home = web.get("/portal/").content.decode()
    assert 'href="/c/alpha/book/"' in home and 'href="/portal/visits/"' in home


def test_the_day_strip_preselects_the_first_day_with_slots_and_a_tap_swaps_only_the_slots(web, alpha, checkup, day):
    # Dima works only on `day`'s weekday from now on: the strip's first day with times is `day`.
    alpha.doctor.schedule_rules.exclude(weekday=day.weekday()).delete()
    page = web.get(f"/c/alpha/book/{checkup.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert (
        f'data-day="{day.isoformat()}"' in html
        and 'aria-current="date"' in html.split(f'data-day="{day.isoformat()}"')[0].rsplit("<a", 1)[1]
    )
    assert html.count('class="slot"') == 18
    assert '">09:00</a>' in html and '">17:30</a>' in html  # shown in the clinic's zone, not the server's UTC
    slot_url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 9)).replace("&", "&amp;")
    assert slot_url in html

    empty_day = day + timedelta(days=1)
    swapped = web.get(f"/c/alpha/book/{checkup.pk}/?day={empty_day.isoformat()}", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in swapped and swapped.lstrip().startswith('<section id="booking-slots"')
    assert "No free times on this day" in swapped


def test_bad_choices_are_a_404_or_fall_back_never_a_500(web, alpha, checkup, beta):
    assert web.get("/c/alpha/book/999999/").status_code == 404
    beta_service = f.ServiceFactory(clinic=beta.clinic)
    beta.doctor.services.add(beta_service)
    assert web.get(f"/c/alpha/book/{beta_service.pk}/").status_code == 404  # another clinic's service
    assert web.get(f"/c/alpha/book/{checkup.pk}/?day=31-02-2026&doctor=abc").status_code == 200
    assert web.get("/c/nope/book/").status_code == 404


# --- confirming and booking ------------------------------------------------------------------------


def test_signing_in_is_asked_at_the_confirm_step_and_comes_back_to_it(web, alpha, checkup, day):
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 10))
    response = web.get(url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login/" and parse_qs(location.query)["next"] == [url]  # the whole query survives


def test_a_patient_books_from_the_confirm_page(signed_in, alpha, checkup, anna, anna_thread, day):
    alpha.clinic.address = "Moscow, Tverskaya 1"
    alpha.clinic.save()
    checkup.price_rub = 1500
    checkup.save()
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 10))
    page = signed_in.get(url).content.decode()
    for text in ("Check-up", "Dr Dima", "10:00", "Tverskaya 1", "1500 RUB", "Europe/Moscow", "Anna Petrova"):
        assert text in page
    assert ", 10:00</strong>" in page

    response = signed_in.post(url, {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T10:00"})
    visit = Visit.objects.get()
    assert response["Location"] == f"/portal/visits/{visit.pk}/"
    assert (visit.patient, visit.doctor, visit.starts_at, visit.source) == (anna, alpha.doctor, at(alpha.clinic, day, 10), "portal")
    shown = signed_in.get(response["Location"]).content.decode()
    assert "Visit booked." in shown and f'href="/portal/visits/{visit.pk}/calendar.ics"' in shown
    ics = signed_in.get(f"/portal/visits/{visit.pk}/calendar.ics")
    assert ics["Content-Type"].startswith("text/calendar") and b"BEGIN:VEVENT" in ics.content


def test_a_guardian_books_for_a_child_but_not_for_a_stranger(signed_in, alpha, checkup, anna, anna_thread, day):
    child = f.DependantFactory(guardian=anna, full_name="Masha Petrova")
    stranger = f.PatientFactory()
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 11))
    assert "Masha Petrova" in signed_in.get(url).content.decode()
    fields = {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T11:00"}
    assert signed_in.post(url, {**fields, "for": stranger.pk}).status_code == 404
    signed_in.post(url, {**fields, "for": child.pk})
    assert Visit.objects.get().patient == child


def test_a_slot_just_taken_shows_the_alternatives_as_buttons(signed_in, alpha, checkup, day):
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10))
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 10))
    response = signed_in.post(url, {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T10:00"})
    page = response.content.decode()
    assert response.status_code == 409 and "This time has just been taken" in page
    for alternative in ("09:30", "10:30"):
        assert (
            confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, *map(int, alternative.split(":")))).replace("&", "&amp;")
            in page
        )
    assert Visit.objects.count() == 1


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"min_notice_minutes": 60 * 24 * 5}, "Online booking closes 120 h before the visit"),
        ({"horizon_days": 1}, "Visits can be booked at most 1 days ahead"),
        ({"max_upcoming_visits": 1}, "You already have 1 upcoming visits in this clinic"),
    ],
)
def test_the_clinic_rules_refuse_with_a_clear_message_and_keep_the_choice(
    signed_in, alpha, checkup, anna, anna_thread, day, rules, message
):
    BookingRules.objects.create(clinic=alpha.clinic, **rules)
    if "max_upcoming_visits" in rules:
        f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 15))
    child = f.DependantFactory(guardian=anna)
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 10))
    fields = {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T10:00", "for": anna.pk}
    if "max_upcoming_visits" not in rules:
        fields["for"] = child.pk
    response = signed_in.post(url, fields)
    page = response.content.decode()
    assert response.status_code == 400 and message in page
    assert f'<option value="{fields["for"]}" selected>' in page  # who it was for is kept


def test_without_consent_the_page_links_to_the_consent_and_back(web, alpha, checkup, day):
    pavel = f.PatientFactory(full_name="Pavel")
    f.ConsentDocumentFactory(clinic=alpha.clinic)
    web.force_login(pavel.user)
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 10))
    response = web.post(url, {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T10:00"})
    page = response.content.decode()
    assert response.status_code == 403 and "please accept its personal data consent" in page
    assert "/portal/clinics/alpha/consent/?next=" in page
    assert not Visit.objects.exists()


def test_a_garbled_slot_is_a_404_not_a_500(signed_in, alpha, checkup, beta):
    base = f"/portal/book/alpha/confirm/?service={checkup.pk}&doctor={alpha.doctor.pk}"
    assert signed_in.get(base + "&at=tomorrow").status_code == 404
    assert signed_in.get(f"/portal/book/alpha/confirm/?service={checkup.pk}&doctor={beta.doctor.pk}&at=2030-01-01T10:00").status_code == 404
    assert signed_in.get("/portal/book/alpha/confirm/?service=x").status_code == 404


def test_a_time_outside_working_hours_is_refused_with_a_message(signed_in, alpha, checkup, day):
    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 20))
    response = signed_in.post(url, {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T20:00"})
    assert response.status_code == 400 and "The doctor does not see patients at this time" in response.content.decode()


# --- My visits ------------------------------------------------------------------------------------


def test_my_visits_lists_the_familys_visits_in_every_clinic_and_nobody_elses(
    signed_in, alpha, beta, checkup, anna, anna_thread, day, django_assert_max_num_queries
):
    child = f.DependantFactory(guardian=anna, full_name="Masha Petrova")
    beta_service = f.ServiceFactory(clinic=beta.clinic, name="Therapy")
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    f.VisitFactory(doctor=beta.doctor, service=beta_service, patient=child, starts_at=at(beta.clinic, day, 12))
    f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() - timedelta(days=10), status="completed")
    f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 11))  # another patient's
    f.WaitlistEntryFactory(doctor=alpha.doctor, service=checkup, patient=anna)

    page = signed_in.get("/portal/visits/").content.decode()
    upcoming, past = page.split('id="upcoming-visits"')[1].split('id="past-visits"')
    assert upcoming.count('class="card visit-card') == 2 and "for Masha Petrova" in upcoming and "Beta Health" in upcoming
    assert past.count('class="card visit-card') == 1 and "Came" in past
    assert ", 10:00</span>" in upcoming and ", 12:00</span>" in upcoming  # each in its clinic's zone
    assert ", 11:00</span>" not in page
    assert "Leave the waiting list" in page

    for n in range(5):  # more visits, same number of queries
        f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day + timedelta(days=1), 9 + n))
    with django_assert_max_num_queries(12):
        assert signed_in.get("/portal/visits/").status_code == 200


def test_another_patients_visit_does_not_exist_for_me(signed_in, alpha, checkup, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, starts_at=at(alpha.clinic, day, 10))
    for url in ("/", "/calendar.ics", "/cancel/"):
        assert signed_in.get(f"/portal/visits/{visit.pk}{url}").status_code == 404
    assert signed_in.post(f"/portal/visits/{visit.pk}/cancel/").status_code == 404
    assert signed_in.post(f"/portal/visits/{visit.pk}/confirm/").status_code == 404
    assert signed_in.get(f"/c/alpha/book/{checkup.pk}/?move={visit.pk}").status_code == 404
    assert Visit.objects.get().status == "booked"


def test_cancel_says_whether_it_is_late_then_cancels(signed_in, alpha, checkup, anna, anna_thread, day):
    soon = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() + timedelta(hours=5))
    later = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    assert "counts as a late cancellation" in signed_in.get(f"/portal/visits/{soon.pk}/cancel/").content.decode()
    assert "Free cancellation" in signed_in.get(f"/portal/visits/{later.pk}/cancel/").content.decode()

    response = signed_in.post(f"/portal/visits/{soon.pk}/cancel/", {"reason": "Ill"}, follow=True)
    assert "Visit cancelled." in response.content.decode()
    soon.refresh_from_db()
    assert (soon.status, soon.cancelled_late, soon.cancel_reason) == ("cancelled", True, "Ill")
    again = signed_in.post(f"/portal/visits/{soon.pk}/cancel/", follow=True).content.decode()
    assert "This visit is already cancelled" in again


def test_a_visit_is_moved_through_the_same_flow(signed_in, alpha, checkup, anna, anna_thread, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    slots = signed_in.get(f"/c/alpha/book/{checkup.pk}/?move={visit.pk}&day={day.isoformat()}").content.decode()
    assert "Move the visit" in slots
    target = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 10), move=visit.pk)
    assert target.replace("&", "&amp;") in slots  # its own time is offered too (it is free once moved)

    url = confirm_url(alpha.clinic, checkup, alpha.doctor, at(alpha.clinic, day, 14), move=visit.pk)
    assert "instead of" in signed_in.get(url).content.decode()
    response = signed_in.post(url, {"service": checkup.pk, "doctor": alpha.doctor.pk, "at": f"{day.isoformat()}T14:00", "move": visit.pk})
    moved = Visit.objects.get(rescheduled_from=visit)
    assert response["Location"] == f"/portal/visits/{moved.pk}/"
    assert moved.starts_at == at(alpha.clinic, day, 14)
    visit.refresh_from_db()
    assert visit.status == "cancelled"


def test_a_visit_soon_cannot_be_moved_online(signed_in, alpha, checkup, anna, anna_thread):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=timezone.now() + timedelta(hours=5))
    page = signed_in.get(f"/portal/visits/{visit.pk}/").content.decode()
    assert "can no longer be moved online" in page and "?move=" not in page


def test_confirming_attendance(signed_in, alpha, checkup, anna, anna_thread, day):
    visit = f.VisitFactory(doctor=alpha.doctor, service=checkup, patient=anna, starts_at=at(alpha.clinic, day, 10))
    assert "I will come" in signed_in.get(f"/portal/visits/{visit.pk}/").content.decode()
    response = signed_in.post(f"/portal/visits/{visit.pk}/confirm/", {"back": "list"})
    assert response["Location"] == "/portal/visits/"
    visit.refresh_from_db()
    assert visit.status == "confirmed"
    twice = signed_in.post(f"/portal/visits/{visit.pk}/confirm/", follow=True).content.decode()
    assert "Only a booked future visit can be confirmed" in twice


def test_portal_visit_pages_need_sign_in(web, alpha):
    assert web.get("/portal/visits/")["Location"] == "/login/?next=/portal/visits/"


# --- waiting list ---------------------------------------------------------------------------------


def test_joining_and_leaving_the_waiting_list(signed_in, alpha, checkup, anna, anna_thread):
    response = signed_in.post(f"/c/alpha/book/{checkup.pk}/waitlist/", {"doctor": alpha.doctor.pk}, follow=True)
    page = response.content.decode()
    assert "we will offer it in your chat" in page and "Waiting for an earlier time" in page
    entry = anna.waitlist.get()
    assert entry.is_active and entry.service == checkup
    signed_in.post(f"/portal/waitlist/{entry.pk}/leave/")
    entry.refresh_from_db()
    assert not entry.is_active
    assert signed_in.post(f"/portal/waitlist/{entry.pk}/leave/").status_code == 404  # no longer active


def test_the_waiting_list_refuses_clearly(signed_in, web, alpha, checkup, beta):
    no_doctor = signed_in.post(f"/c/alpha/book/{checkup.pk}/waitlist/", {"doctor": beta.doctor.pk}, follow=True)
    assert "Choose a doctor." in no_doctor.content.decode()
    other = f.WaitlistEntryFactory(doctor=alpha.doctor, service=checkup)
    assert signed_in.post(f"/portal/waitlist/{other.pk}/leave/").status_code == 404

    pavel = f.PatientFactory()
    f.ConsentDocumentFactory(clinic=alpha.clinic)
    web.force_login(pavel.user)
    response = web.post(f"/c/alpha/book/{checkup.pk}/waitlist/", {"doctor": alpha.doctor.pk})
    assert response["Location"].startswith("/portal/clinics/alpha/consent/?next=")


def test_a_guardian_puts_a_child_on_the_waiting_list(signed_in, alpha, checkup, anna, anna_thread):
    child = f.DependantFactory(guardian=anna, full_name="Masha Petrova")
    page = signed_in.get(f"/c/alpha/book/{checkup.pk}/").content.decode()
    assert 'name="for"' in page and "Masha Petrova" in page
    signed_in.post(f"/c/alpha/book/{checkup.pk}/waitlist/", {"doctor": alpha.doctor.pk, "for": child.pk})
    assert child.waitlist.get().is_active
    assert "for Masha Petrova" in signed_in.get("/portal/visits/").content.decode()
