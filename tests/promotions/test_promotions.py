"""Promotions: the audience is reached once, the portal highlights the clinic until opened, the manager sees reach."""

from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs

import pytest
from django.test import TestCase
from django.utils import timezone

from notifications import services as outbox
from notifications.models import Notification, Preference
from promotions.models import Promotion, Receipt
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(alpha):
    """Three contacts of Alpha with consent: Vera and Gleb tagged 'implants', Dina not; Boris is Beta's."""
    implants = f.TagFactory(clinic=alpha.clinic, name="implants")
    found = {}
    for name, phone, tagged in (("Vera", "+79160001001", True), ("Gleb", "+79160001002", True), ("Dina", "+79160001003", False)):
        patient = f.PatientFactory(full_name=name, phone=phone)
        thread = f.ThreadFactory(clinic=alpha.clinic, patient=patient)
        if tagged:
            thread.contact.tags.add(implants)
        found[name] = patient
    found["tag"] = implants
    return found


@pytest.fixture
def promotion(alpha, people):
    today = timezone.localtime(timezone.now(), alpha.clinic.tz).date()  # the clinic's day, whatever the hour in UTC
    promotion = Promotion.objects.create(
        clinic=alpha.clinic, title="Implants −20%", text="Until the end of the month.", valid_from=today, valid_until=today + timedelta(days=30),
        by_sms=True,
    )  # fmt: skip
    promotion.tags.add(people["tag"])
    return promotion


def _launch(web, user, promotion):
    web.force_login(user)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return web.post("/admin/promotions/promotion/", {"action": "launch", "_selected_action": [promotion.pk]}, follow=True)


def test_the_manager_launches_and_the_tagged_audience_is_reached_once(web, alpha, people, promotion):
    response = _launch(web, alpha.manager, promotion)
    assert "Implants −20%: 2 people reached." in response.content.decode()
    assert set(Receipt.objects.values_list("patient__full_name", flat=True)) == {"Vera", "Gleb"}
    assert Notification.objects.filter(promotion=promotion, kind="promotion").count() == 2
    again = _launch(web, alpha.manager, promotion)
    assert "launched already" in again.content.decode()
    assert Receipt.objects.count() == 2


def test_only_owners_and_managers_launch(web, alpha, beta, promotion):
    web.force_login(alpha.operator)
    assert web.get("/admin/promotions/promotion/").status_code == 403
    web.force_login(beta.manager)
    assert web.get(f"/admin/promotions/promotion/{promotion.pk}/change/").status_code in (302, 404)
    _launch(web, beta.manager, promotion)
    assert not Receipt.objects.exists()


def test_the_portal_highlights_the_clinic_until_the_promotion_is_opened(web, alpha, people, promotion):
    _launch(web, alpha.manager, promotion)
    other = f.ClinicFactory(name="Another Clinic")
    f.ThreadFactory(clinic=other, patient=people["Vera"])
    web.force_login(people["Vera"].user)
    home = web.get("/portal/").content.decode()
    assert "has-promotion" in home and "Implants −20%" in home
    assert home.index("Alpha Dental") < home.index("Another Clinic")  # the clinic with news comes first

    page = web.get(f"/portal/promotions/{promotion.pk}/")
    assert page.status_code == 200 and "Until the end of the month." in page.content.decode()
    assert "has-promotion" not in web.get("/portal/").content.decode()

    web.force_login(people["Dina"].user)  # not in the audience
    assert web.get(f"/portal/promotions/{promotion.pk}/").status_code == 404


def test_the_highlight_ends_with_the_last_day_in_the_clinics_zone_not_in_utc(web, alpha, people, promotion):
    import time_machine

    _launch(web, alpha.manager, promotion)
    last_day = promotion.valid_from  # a one-day promotion: its last day is today, in Moscow
    Promotion.objects.filter(pk=promotion.pk).update(valid_until=last_day)
    web.force_login(people["Vera"].user)
    # 22:30 UTC of the last day is already the next day in Moscow: the promotion has ended there.
    with time_machine.travel(datetime.combine(last_day, time(22, 30), tzinfo=UTC), tick=False):
        assert "has-promotion" not in web.get("/portal/").content.decode()
    with time_machine.travel(datetime.combine(last_day, time(20, 30), tzinfo=UTC), tick=False):  # 23:30 in Moscow
        assert "has-promotion" in web.get("/portal/").content.decode()


def test_sms_go_out_in_the_day_and_reach_counts_what_happened(web, alpha, people, promotion, smsru):
    _launch(web, alpha.manager, promotion)
    Preference.objects.create(user=people["Gleb"].user, promotions=False)
    noon = datetime.combine(timezone.localdate(), time(12), tzinfo=alpha.clinic.tz) + timedelta(days=1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        outbox.notifications_dispatch_due(now=noon)
    texts = [parse_qs(c.request.content.decode())["msg"][0] for c in smsru.calls]
    assert len(texts) == 1 and "Implants −20%" in texts[0] and f"/portal/promotions/{promotion.pk}/" in texts[0]
    assert Notification.objects.get(recipient=people["Gleb"].user).skip_reason == "opted_out"

    web.force_login(people["Vera"].user)
    web.get(f"/portal/promotions/{promotion.pk}/")
    f.VisitFactory(doctor=alpha.doctor, patient=people["Vera"], starts_at=timezone.now() + timedelta(days=3))
    web.force_login(alpha.manager)
    page = web.get(f"/admin/promotions/promotion/{promotion.pk}/change/").content.decode()
    for figure in (
        'data-figure="reached">2<',
        'data-figure="opened">1 <span class="font-normal text-sm">(50 %)',
        'data-figure="booked_after">1 ',
    ):
        assert figure in page
    sms_row = '<th scope="row" class="font-semibold px-3 py-2 text-left">SMS</th>' + "".join(
        f'<td class="px-3 py-2 text-right">{n}</td>' for n in (0, 1, 0, 0)
    )
    assert sms_row in page  # queued, sent, delivered, failed


def test_the_portal_lists_running_promotions_and_a_patient_who_joined_later_sees_them(web, alpha, people, promotion):
    _launch(web, alpha.manager, promotion)
    late = f.PatientFactory(full_name="Lena Later", phone="+79160001009")
    f.ThreadFactory(clinic=alpha.clinic, patient=late).contact.tags.add(people["tag"])  # a contact since the launch
    ended = Promotion.objects.create(
        clinic=alpha.clinic, title="Old news", text="…", valid_from=timezone.localdate() - timedelta(days=40),
        valid_until=timezone.localdate() - timedelta(days=10), status=Promotion.Status.LAUNCHED,
    )  # fmt: skip
    draft = Promotion.objects.create(
        clinic=alpha.clinic, title="Not yet", text="…", valid_from=timezone.localdate(), valid_until=timezone.localdate()
    )
    web.force_login(late.user)
    home = web.get("/portal/").content.decode()
    assert 'href="/portal/promotions/"' in home and 'href="/portal/notifications/"' in home  # in the navigation and on the home page
    assert "has-promotion" in home  # highlighted as for those reached at launch
    listing = web.get("/portal/promotions/").content.decode()
    assert "Implants −20%" in listing and ended.title not in listing and draft.title not in listing
    assert listing.count("has-promotion") == 1 and "★ New" in listing

    opened = web.get(f"/portal/promotions/{promotion.pk}/")
    assert opened.status_code == 200 and "Until the end of the month." in opened.content.decode()
    assert Receipt.objects.get(patient=late).opened_at is not None  # reached now, and opened
    listing = web.get("/portal/promotions/").content.decode()
    assert "Implants −20%" in listing and "has-promotion" not in listing
    assert "has-promotion" not in web.get("/portal/").content.decode()
    assert web.get(f"/portal/promotions/{ended.pk}/").status_code == 404


def test_the_promotions_list_shows_nothing_outside_the_audience_or_the_consent(web, alpha, beta, people, promotion):
    from patients.services import consent_withdraw

    _launch(web, alpha.manager, promotion)
    web.force_login(people["Dina"].user)  # not tagged
    assert "Implants −20%" not in web.get("/portal/promotions/").content.decode()
    boris = f.PatientFactory(full_name="Boris", phone="+79160001010")
    f.ThreadFactory(clinic=beta.clinic, patient=boris)
    web.force_login(boris.user)  # another clinic's patient
    assert "Your clinics have no promotions running now." in web.get("/portal/promotions/").content.decode()
    consent_withdraw(patient=people["Vera"], clinic=alpha.clinic, ip="127.0.0.1", user_agent="test")
    web.force_login(people["Vera"].user)
    assert "Implants −20%" not in web.get("/portal/promotions/").content.decode()


@pytest.mark.parametrize("running", [1, 5])
def test_the_portal_finds_the_running_promotions_in_the_same_queries_however_many_run(
    alpha, people, promotion, running, django_assert_num_queries
):
    """None was launched at Vera (no receipts): every one is checked against its audience now, in one query for all
    (contacts, consent twice, running, their tags, receipts, audiences)."""
    from promotions.selectors import portal_promotions

    Promotion.objects.filter(pk=promotion.pk).update(status=Promotion.Status.LAUNCHED, launched_at=timezone.now())
    for n in range(running - 1):
        extra = Promotion.objects.create(
            clinic=alpha.clinic, title=f"News {n}", text="…", valid_from=promotion.valid_from, valid_until=promotion.valid_until,
            status=Promotion.Status.LAUNCHED, launched_at=timezone.now(), doctor=alpha.doctor if n % 2 else None,
        )  # fmt: skip
        if n % 2 == 0:
            extra.tags.add(people["tag"])
    with django_assert_num_queries(7):
        shown = portal_promotions(patient=people["Vera"])
    expected = {"Implants −20%"} | {f"News {n}" for n in range(0, running - 1, 2)}  # not those for Dr's patients: Vera saw none yet
    assert {item.promotion.title for item in shown} == expected
    assert all(item.unread for item in shown)
    with django_assert_num_queries(7):
        assert portal_promotions(patient=people["Dina"]) == []  # untagged, and no visit with the doctor
