"""Reach: per-channel figures in two queries, a sound "booked after", the audience size before launch, and tenancy."""

import itertools
from datetime import datetime, time, timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from appointments.models import Visit
from notifications import services as outbox
from notifications.models import Delivery, Notification, Preference
from patients.models import ConsentRecord
from promotions.models import Promotion, Receipt
from promotions.selectors import promotion_audience_size, promotion_reach
from promotions.services import promotion_launch
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(alpha):
    """Vera (an account holder with a son, Kolya) and Gleb are Alpha's contacts; both wrote to the clinic."""
    vera = f.PatientFactory(full_name="Vera", phone="+79160002001", email="vera@example.ru")
    kolya = f.DependantFactory(guardian=vera, full_name="Kolya")
    gleb = f.PatientFactory(full_name="Gleb", phone="+79160002002")
    f.ThreadFactory(clinic=alpha.clinic, patient=vera)
    f.ThreadFactory(clinic=alpha.clinic, patient=kolya)  # the same family: reached once, through Vera
    f.ThreadFactory(clinic=alpha.clinic, patient=gleb)
    return {"Vera": vera, "Kolya": kolya, "Gleb": gleb}


@pytest.fixture
def launched(alpha, family):
    """A promotion valid until the day after tomorrow, launched now with SMS and e-mail."""
    today = timezone.localtime(timezone.now(), alpha.clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    promotion = Promotion.objects.create(
        clinic=alpha.clinic, title="Check-up −15%", text="This week only.", valid_from=today, valid_until=today + timedelta(days=2),
        by_sms=True, by_email=True,
    )  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert promotion_launch(actor=alpha.manager, promotion=promotion) == 2
    return Promotion.objects.select_related("clinic").get(pk=promotion.pk)


_days_ahead = itertools.count(5)


def _visit(alpha, patient, *, booked_at, **extra):
    """A visit booked at `booked_at`, each on its own later day (PostgreSQL refuses one doctor's overlapping visits)."""
    starts_at = booked_at + timedelta(days=next(_days_ahead))
    return f.VisitFactory(doctor=alpha.doctor, patient=patient, starts_at=starts_at, created_at=booked_at, **extra)


def _receipt_time(promotion):
    return Receipt.objects.filter(promotion=promotion).values_list("created_at", flat=True).first()


def test_a_visit_booked_before_the_promotion_reached_the_person_does_not_count(alpha, family, launched):
    _visit(alpha, family["Vera"], booked_at=_receipt_time(launched) - timedelta(minutes=1))
    assert promotion_reach(promotion=launched).booked_after == 0


def test_a_visit_booked_by_a_dependant_counts_for_the_family_once(alpha, family, launched):
    after = _receipt_time(launched) + timedelta(hours=1)
    _visit(alpha, family["Kolya"], booked_at=after)
    _visit(alpha, family["Vera"], booked_at=after + timedelta(hours=1))
    reach = promotion_reach(promotion=launched)
    assert (reach.reached, reach.booked_after, reach.booked_share) == (2, 1, 50)


def test_a_visit_booked_by_staff_counts(alpha, family, launched):
    _visit(alpha, family["Gleb"], booked_at=_receipt_time(launched) + timedelta(hours=2), source="phone", created_by=alpha.operator)
    assert promotion_reach(promotion=launched).booked_after == 1


def test_the_last_valid_day_ends_at_midnight_in_the_clinics_zone(alpha, family, launched):
    midnight = datetime.combine(launched.valid_until + timedelta(days=1), time.min, tzinfo=alpha.clinic.tz)
    _visit(alpha, family["Gleb"], booked_at=midnight)  # the first moment after the promotion
    assert promotion_reach(promotion=launched).booked_after == 0
    _visit(alpha, family["Vera"], booked_at=midnight - timedelta(seconds=1))  # 23:59:59 of the last day, Moscow time
    assert promotion_reach(promotion=launched).booked_after == 1


def test_a_visit_in_another_clinic_does_not_count(alpha, beta, family, launched):
    f.VisitFactory(doctor=beta.doctor, patient=family["Vera"], starts_at=timezone.now() + timedelta(days=3))
    assert promotion_reach(promotion=launched).booked_after == 0


def test_cancelled_by_the_clinic_does_not_count_by_the_patient_does(alpha, family, launched):
    after = _receipt_time(launched) + timedelta(hours=1)
    cancelled = {"status": Visit.Status.CANCELLED, "cancelled_at": after + timedelta(hours=1)}
    _visit(alpha, family["Vera"], booked_at=after, cancelled_by=Visit.CancelledBy.CLINIC, **cancelled)
    assert promotion_reach(promotion=launched).booked_after == 0
    _visit(alpha, family["Gleb"], booked_at=after, cancelled_by=Visit.CancelledBy.PATIENT, **cancelled)
    assert promotion_reach(promotion=launched).booked_after == 1


def test_a_move_is_not_a_new_booking(alpha, family, launched):
    """Moving a visit booked before the promotion creates a visit after it: still no booking because of the promotion.
    A visit booked after it and then moved by the clinic still counts once."""
    received = _receipt_time(launched)
    moved = {"status": Visit.Status.CANCELLED, "cancelled_by": Visit.CancelledBy.CLINIC}
    old = _visit(alpha, family["Gleb"], booked_at=received - timedelta(days=1), **moved)
    _visit(alpha, family["Gleb"], booked_at=received + timedelta(hours=1), rescheduled_from=old)
    assert promotion_reach(promotion=launched).booked_after == 0

    first = _visit(alpha, family["Vera"], booked_at=received + timedelta(hours=1), **moved)
    _visit(alpha, family["Vera"], booked_at=received + timedelta(hours=2), rescheduled_from=first)
    assert promotion_reach(promotion=launched).booked_after == 1


def test_reach_per_channel_in_two_queries(alpha, family, launched, smsru, django_assert_num_queries, mailoutbox):
    Preference.objects.create(user=family["Gleb"].user, email=False)
    noon = datetime.combine(timezone.localdate(), time(12), tzinfo=alpha.clinic.tz) + timedelta(days=1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        outbox.notifications_dispatch_due(now=noon)
    # Vera: SMS and e-mail; Gleb: SMS only (he has no e-mail). The SMS to Gleb is confirmed, Vera's e-mail bounces.
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 3
    gleb_sms = Delivery.objects.get(notification__recipient=family["Gleb"].user, channel="sms")
    outbox.delivery_report(provider=gleb_sms.provider, provider_message_id=gleb_sms.provider_message_id, delivered=True)
    Delivery.objects.filter(channel="email").update(status=Delivery.Status.FAILED)
    Delivery.objects.create(notification=Notification.objects.get(recipient=family["Gleb"].user), channel="email", destination="x@y.z")

    with django_assert_num_queries(2):
        reach = promotion_reach(promotion=launched)
    assert (reach.channels["sms"].queued, reach.channels["sms"].sent, reach.channels["sms"].delivered, reach.channels["sms"].failed) == (
        0, 2, 1, 0,
    )  # fmt: skip
    assert (reach.channels["email"].queued, reach.channels["email"].sent, reach.channels["email"].failed) == (1, 0, 1)
    assert (reach.sent, reach.delivered) == (2, 1)


def test_the_audience_size_counts_who_dispatch_would_send_to(alpha, family, smsru, mailoutbox):
    """The editor's numbers before launch agree with what dispatch then does."""
    tina = f.PatientFactory(full_name="Tina", phone="+79160002003", email="tina@example.ru")
    f.ThreadFactory(clinic=alpha.clinic, patient=tina)
    Preference.objects.create(user=tina.user, promotions=False)  # turned promotions off: neither channel
    Preference.objects.create(user=family["Gleb"].user, sms=False)  # no SMS, and no e-mail address
    lev = f.PatientFactory(full_name="Lev", phone="+79160002004", email="lev@example.ru")
    f.ThreadFactory(clinic=alpha.clinic, patient=lev)
    record = ConsentRecord.objects.filter(patient=lev).first()
    f.ConsentRecordFactory(patient=lev, clinic=alpha.clinic, document=record.document, action=ConsentRecord.Action.WITHDRAWN)
    today = timezone.localtime(timezone.now(), alpha.clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    promotion = Promotion.objects.create(
        clinic=alpha.clinic, title="Hygiene", text="…", valid_from=today, valid_until=today + timedelta(days=9), by_sms=True, by_email=True
    )
    size = promotion_audience_size(promotion=promotion)
    assert (size.people, size.sms, size.email) == (4, 1, 1)  # Vera, Gleb, Tina, Lev; only Vera can get either

    with TestCase.captureOnCommitCallbacks(execute=True):
        promotion_launch(actor=alpha.manager, promotion=promotion)
    noon = datetime.combine(today, time(12), tzinfo=alpha.clinic.tz) + timedelta(days=1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        outbox.notifications_dispatch_due(now=noon)
    sent = Delivery.objects.filter(notification__promotion=promotion)
    assert (sent.filter(channel="sms").count(), sent.filter(channel="email").count()) == (size.sms, size.email)


def test_the_editor_shows_the_audience_size_then_the_reach_per_channel(web, alpha, family):
    web.force_login(alpha.manager)
    today = timezone.localtime(timezone.now(), alpha.clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    response = web.post(
        "/admin/promotions/promotion/add/",
        {"clinic": alpha.clinic.pk, "title": "Braces", "text": "Free consultation.", "valid_from": today, "valid_until": today,
         "by_sms": "on", "_continue": "1"},
        follow=True,
    )  # fmt: skip
    page = response.content.decode()
    assert "Would reach 2 people." in page and "2 of them can get an SMS" in page and "1 of them can get an e-mail" in page
    promotion = Promotion.objects.get(title="Braces")
    assert promotion.created_by == alpha.manager

    web.post("/admin/promotions/promotion/", {"action": "launch", "_selected_action": [promotion.pk]})
    page = web.get(f"/admin/promotions/promotion/{promotion.pk}/change/").content.decode()
    assert 'data-figure="reached">2<' in page and 'data-figure="opened">0 <span class="font-normal text-sm">(0 %)' in page
    assert '<th scope="row" class="font-semibold px-3 py-2 text-left">SMS</th><td class="px-3 py-2 text-right">0</td>' in page


def test_another_clinics_manager_sees_nothing_of_it(web, alpha, beta, family, launched):
    web.force_login(beta.manager)
    change = web.get(f"/admin/promotions/promotion/{launched.pk}/change/")
    assert change.status_code == 302 and change["Location"] == "/admin/"
    listing = web.get("/admin/promotions/promotion/").content.decode()
    assert "Check-up −15%" not in listing and "Alpha Dental" not in listing
    notification = Notification.objects.filter(promotion=launched).first()
    assert web.get(f"/admin/notifications/notification/{notification.pk}/change/").status_code == 302
    notifications = web.get("/admin/notifications/notification/?kind__exact=promotion")
    assert notifications.status_code == 200 and "Alpha Dental" not in notifications.content.decode()
    assert "No results found" in notifications.content.decode()
    # Launching someone else's promotion through the list action changes nothing.
    web.post("/admin/promotions/promotion/", {"action": "launch", "_selected_action": [launched.pk]})
    assert Promotion.objects.get(pk=launched.pk).launched_at == launched.launched_at


def test_the_editor_pages_cost_a_fixed_number_of_queries(web, alpha, family, launched, django_assert_max_num_queries):
    """The figures are computed once per page (unfold reads a read-only field several times while rendering it)."""
    web.force_login(alpha.manager)
    with django_assert_max_num_queries(13):
        web.get(f"/admin/promotions/promotion/{launched.pk}/change/")
    draft = Promotion.objects.create(
        clinic=alpha.clinic, title="Draft", text="…", valid_from=launched.valid_from, valid_until=launched.valid_until
    )
    with django_assert_max_num_queries(20):  # the audience size is 5 of them
        web.get(f"/admin/promotions/promotion/{draft.pk}/change/")


def test_the_launch_button_asks_first_then_launches_once(web, alpha, beta, family):
    today = timezone.localtime(timezone.now(), alpha.clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    promotion = Promotion.objects.create(
        clinic=alpha.clinic, title="Whitening", text="Half price.", valid_from=today, valid_until=today, by_sms=True
    )
    web.force_login(alpha.manager)
    page = web.get(f"/admin/promotions/promotion/{promotion.pk}/change/").content.decode()
    assert f'href="/admin/promotions/promotion/{promotion.pk}/launch/"' in page

    confirm = web.get(f"/admin/promotions/promotion/{promotion.pk}/launch/")
    assert confirm.status_code == 200
    assert "Launch the promotion?" in confirm.content.decode() and "Would reach 2 people." in confirm.content.decode()
    assert Promotion.objects.get(pk=promotion.pk).status == Promotion.Status.DRAFT  # looking is not launching

    with TestCase.captureOnCommitCallbacks(execute=True):
        done = web.post(f"/admin/promotions/promotion/{promotion.pk}/launch/", follow=True)
    assert "Whitening: 2 people reached." in done.content.decode()
    assert Promotion.objects.get(pk=promotion.pk).status == Promotion.Status.LAUNCHED
    assert Receipt.objects.filter(promotion=promotion).count() == 2
    page = web.get(f"/admin/promotions/promotion/{promotion.pk}/change/").content.decode()
    assert f"/admin/promotions/promotion/{promotion.pk}/launch/" not in page  # launched: no button
    assert web.post(f"/admin/promotions/promotion/{promotion.pk}/launch/").status_code == 403

    web.force_login(beta.manager)  # another clinic's manager cannot reach it at all
    assert web.post(f"/admin/promotions/promotion/{promotion.pk}/launch/").status_code in (403, 404)
