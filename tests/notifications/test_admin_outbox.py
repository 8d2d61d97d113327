"""The admin's outbox: filters that narrow the list, a list of fixed cost, and each attempt on the notification's page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, Notification
from tests import factories as f

pytestmark = pytest.mark.django_db

LIST = "/admin/notifications/notification/"
PAGE_QUERIES = 14  # a notification's page, whatever the number of deliveries and attempts


@pytest.fixture
def outbox(alpha, beta):
    """34 of Alpha's notifications (messages and promotions, SMS and e-mail, some skipped, two last week) and one of Beta's."""
    now = timezone.now()
    made = []
    for n in range(34):
        patient = f.PatientFactory(full_name=f"Person {n:02d}", email=f"p{n}@example.ru")
        thread = f.ThreadFactory(clinic=alpha.clinic, patient=patient) if n % 2 else None
        made.append(
            Notification.objects.create(
                clinic=alpha.clinic,
                recipient=patient.user,
                thread=thread,
                kind=Notification.Kind.MESSAGE if thread else Notification.Kind.PROMOTION,
                status=Notification.Status.SKIPPED if n % 5 == 0 else Notification.Status.DISPATCHED,
                skip_reason=Notification.Skip.OPTED_OUT if n % 5 == 0 else "",
                created_at=now - timedelta(days=8) if n < 2 else now - timedelta(minutes=n),
            )  # fmt: skip
        )
    for n, notification in enumerate(made):
        if notification.status == Notification.Status.DISPATCHED:
            channel = Delivery.Channel.SMS if n % 3 else Delivery.Channel.EMAIL
            Delivery.objects.create(notification=notification, channel=channel, destination="+79160000000", status=Delivery.Status.SENT)
    other = f.PatientFactory(full_name="Boris Betov")
    Notification.objects.create(clinic=beta.clinic, recipient=other.user, kind=Notification.Kind.PROMOTION)
    return made


def _names(response) -> set[str]:
    return {str(n.recipient.patient) for n in response.context["cl"].result_list}


def test_the_list_costs_a_fixed_number_of_queries(web, alpha, outbox, django_assert_max_num_queries):
    web.force_login(alpha.manager)
    with django_assert_max_num_queries(12):
        response = web.get(LIST)
    page = response.content.decode()
    assert response.context["cl"].result_count == 34 and "Boris Betov" not in page
    assert "Person 33" in page and "New message" in page and "Promotion" in page
    logins = {n.recipient.username for n in response.context["cl"].result_list}
    assert not any(f">{login}<" in page for login in logins)  # people by name, not by login


def test_filters_narrow_the_list(web, alpha, outbox, django_assert_max_num_queries):
    web.force_login(alpha.manager)
    promotions = web.get(LIST, {"kind__exact": "promotion"})
    assert promotions.context["cl"].result_count == 17 and all(n.kind == "promotion" for n in promotions.context["cl"].result_list)
    skipped = web.get(LIST, {"status__exact": "skipped"})
    assert _names(skipped) == {f"Person {n:02d}" for n in range(0, 34, 5)}
    assert web.get(LIST, {"skip_reason__exact": "opted_out"}).context["cl"].result_count == 7
    with django_assert_max_num_queries(12):
        by_email = web.get(LIST, {"channel": "email"})
    expected = {f"Person {n:02d}" for n in range(34) if n % 5 and n % 3 == 0}
    assert _names(by_email) == expected and by_email.context["cl"].result_count == len(expected)
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)  # as the filter's "Past 7 days" link writes it
    week = web.get(LIST, {"created_at__gte": str(today - timedelta(days=6)), "created_at__lt": str(today + timedelta(days=1))})
    assert "Person 00" not in _names(week) and week.context["cl"].result_count == 32
    page = web.get(LIST).content.decode()
    for label in ("By kind", "By status", "By skipped because", "By channel", "By created"):
        assert label in page


def test_the_notification_page_shows_each_deliverys_attempts_in_a_fixed_number_of_queries(
    web, alpha, outbox, django_assert_max_num_queries
):
    notification = outbox[4]
    sms = notification.deliveries.get()
    started = timezone.now()
    DeliveryAttempt.objects.create(
        delivery=sms, number=1, started_at=started, finished_at=started, outcome=DeliveryAttempt.Outcome.RETRY, error="503 busy"
    )
    DeliveryAttempt.objects.create(delivery=sms, number=2, started_at=started, finished_at=started, outcome=DeliveryAttempt.Outcome.SENT)
    email = Delivery.objects.create(notification=notification, channel="email", destination="p4@example.ru", status=Delivery.Status.FAILED)
    DeliveryAttempt.objects.create(delivery=email, number=1, started_at=started, finished_at=started, outcome="failed", error="bad mailbox")
    web.force_login(alpha.manager)
    with django_assert_max_num_queries(PAGE_QUERIES):
        page = web.get(f"{LIST}{notification.pk}/change/").content.decode()
    assert "Attempt history" in page
    history = page[page.index('id="attempt-history"') :]
    for text in ("SMS → +79160000000", "#1", "Temporary error, will retry", "503 busy", "#2", "Accepted by the provider"):
        assert text in history
    assert "E-mail → p4@example.ru" in history and "Refused" in history and "bad mailbox" in history
    deliveries = page[page.index('id="deliveries-group"') :]  # the deliveries themselves, visible to the manager too
    assert "p4@example.ru" in deliveries and "+79160000000" in deliveries and "Failed" in deliveries
    delivery_page = web.get(f"/admin/notifications/delivery/{sms.pk}/change/").content.decode()
    assert "503 busy" in delivery_page and "Accepted by the provider" in delivery_page

    for n in range(3, 8):  # more attempts cost no more queries
        DeliveryAttempt.objects.create(delivery=email, number=n, started_at=started, outcome="retry")
    with django_assert_max_num_queries(PAGE_QUERIES):
        web.get(f"{LIST}{notification.pk}/change/")


def test_another_clinics_manager_gets_no_notification_page(web, beta, outbox):
    web.force_login(beta.manager)
    assert web.get(f"{LIST}{outbox[3].pk}/change/").status_code == 302
    assert web.get(f"/admin/notifications/delivery/{outbox[3].deliveries.get().pk}/change/").status_code == 302
    page = web.get(LIST).content.decode()
    assert "Person 03" not in page and "Alpha Dental" not in page


@pytest.mark.parametrize(("language", "status"), [("en", "Unknown whether sent"), ("ru", "Неизвестно, отправлено ли")])
def test_an_sms_a_dying_worker_may_have_sent_is_shown_as_unknown(web, alpha, outbox, language, status):
    """What the stuck-delivery sweep leaves when it cannot know: its own status, a filter for it, and the reason."""
    from django.utils import translation

    from notifications.services.sending import _unknown_fate

    notification = outbox[7]
    sms = notification.deliveries.get()
    with translation.override("ru"):  # the worker writes in the clinic's language
        sms.status, sms.last_error = Delivery.Status.UNKNOWN, _unknown_fate(sms)
    sms.save()
    web.force_login(alpha.manager)
    web.defaults["HTTP_ACCEPT_LANGUAGE"] = language

    unknown = web.get(LIST, {"delivery_status": "unknown"})
    assert _names(unknown) == {"Person 07"}
    assert status in web.get(LIST).content.decode()  # offered among the filter's choices
    page = web.get(f"{LIST}{notification.pk}/change/").content.decode()
    deliveries = page[page.index('id="deliveries-group"') :]
    assert status in deliveries and "ушло ли SMS, неизвестно" in deliveries
    listed = web.get("/admin/notifications/delivery/", {"status__exact": "unknown"})
    assert [d.pk for d in listed.context["cl"].result_list] == [sms.pk] and status in listed.content.decode()
