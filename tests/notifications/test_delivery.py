"""The delivery pipeline: dispatch rules, one send per channel, retries, and never a second SMS."""

from datetime import datetime, time, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from notifications import services
from notifications.models import Delivery, DeliveryAttempt, Notification, Preference
from notifications.tasks import deliver, deliver_batch, dispatch_due_notifications
from patients.services import consent_withdraw
from tests import factories as f

pytestmark = pytest.mark.django_db


def _daytime(clinic, hour=12):
    """Tomorrow at `hour` in the clinic's zone: past the offline rule's minutes, whatever the hour of the run."""
    return datetime.combine(timezone.localtime(timezone.now(), clinic.tz).date() + timedelta(days=1), time(hour), tzinfo=clinic.tz)


def _dispatch(notification, *, now):
    """What the beat sweep does for one notification, with its on-commit task queueing run (eager Celery)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.notification_dispatch(notification_id=notification.pk, now=now)


def _sweep(*, now):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.notifications_dispatch_due(now=now)


def _sms_texts(route):
    return [parse_qs(call.request.content.decode())["msg"][0] for call in route.calls]


def test_an_offline_message_becomes_one_sms_and_one_email(alpha, offline_reply, smsru):
    notification = offline_reply()
    _dispatch(notification, now=_daytime(alpha.clinic))

    notification.refresh_from_db()
    assert notification.status == Notification.Status.DISPATCHED
    assert smsru.call_count == 1
    sms = _sms_texts(smsru)[0]
    assert "Alpha Dental" in sms and "Your tests are ready" in sms and f"/portal/threads/{notification.thread_id}/" in sms
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["anna@example.ru"]
    sms_delivery, email_delivery = Delivery.objects.order_by("channel").filter(notification=notification).order_by("-channel")
    assert (sms_delivery.channel, sms_delivery.status, sms_delivery.provider, sms_delivery.provider_message_id) == (
        "sms",
        "sent",
        "smsru",
        "2026-1",
    )
    assert (email_delivery.channel, email_delivery.status) == ("email", "sent")
    assert [a.outcome for a in sms_delivery.history.all()] == ["sent"]


def test_a_duplicate_task_does_not_send_again(alpha, offline_reply, smsru):
    notification = offline_reply()
    _dispatch(notification, now=_daytime(alpha.clinic))
    delivery = Delivery.objects.get(notification=notification, channel="sms")
    deliver.delay(delivery.pk)  # the broker delivered the task twice
    assert smsru.call_count == 1


def test_sensitive_threads_never_put_their_words_in_an_sms(alpha, anna_thread, offline_reply, smsru):
    anna_thread.sensitive = True
    anna_thread.save()
    notification = offline_reply("About your test results for the infection")
    _dispatch(notification, now=_daytime(alpha.clinic))
    assert "infection" not in _sms_texts(smsru)[0]
    assert "infection" not in mail.outbox[0].body


def test_quiet_hours_wait_for_nine_in_the_clinics_morning(alpha, offline_reply, smsru):
    notification = offline_reply()
    night = _daytime(alpha.clinic, 23)
    _dispatch(notification, now=night)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING
    assert notification.not_before == datetime.combine(night.date() + timedelta(days=1), time(9), tzinfo=alpha.clinic.tz)
    assert smsru.call_count == 0 and not mail.outbox

    assert _sweep(now=night + timedelta(hours=2)) == 0  # still night: not due
    _sweep(now=notification.not_before + timedelta(minutes=1))
    notification.refresh_from_db()
    assert notification.status == Notification.Status.DISPATCHED
    assert smsru.call_count == 1


def test_urgent_notifications_ignore_quiet_hours(alpha, offline_reply, smsru):
    notification = offline_reply()
    Notification.objects.filter(pk=notification.pk).update(urgent=True)
    _dispatch(notification, now=_daytime(alpha.clinic, 3))
    assert smsru.call_count == 1


@pytest.mark.parametrize("reason", ["opted_out", "no_consent", "read"])
def test_opt_out_withdrawn_consent_and_read_in_time_skip_with_the_reason(alpha, anna, anna_thread, offline_reply, smsru, reason):
    notification = offline_reply()
    if reason == "opted_out":
        Preference.objects.create(user=anna.user, opted_out=True)
    elif reason == "no_consent":
        consent_withdraw(patient=anna, clinic=alpha.clinic, ip=None, user_agent="test")
    else:
        anna_thread.refresh_from_db()
        anna_thread.patient_read_seq = anna_thread.last_seq
        anna_thread.save(update_fields=["patient_read_seq"])
    _dispatch(notification, now=_daytime(alpha.clinic))
    notification.refresh_from_db()
    assert (notification.status, notification.skip_reason) == ("skipped", reason)
    assert smsru.call_count == 0 and not mail.outbox and not Delivery.objects.exists()


def test_chosen_channels_only(alpha, anna, offline_reply, smsru):
    Preference.objects.create(user=anna.user, sms=False)
    notification = offline_reply()
    _dispatch(notification, now=_daytime(alpha.clinic))
    assert smsru.call_count == 0 and len(mail.outbox) == 1


def test_temporary_errors_are_retried_then_sent_with_every_attempt_kept(alpha, offline_reply, smsru):
    ok = httpx.Response(
        200, json={"status": "OK", "status_code": 100, "sms": {"x": {"status": "OK", "status_code": 100, "sms_id": "ok-3"}}}
    )
    answers = iter([httpx.Response(502), httpx.TimeoutException("slow"), ok])

    def flaky(request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    smsru.side_effect = flaky
    notification = offline_reply()
    Preference.objects.create(user=notification.recipient, email=False)
    _dispatch(notification, now=_daytime(alpha.clinic))  # the task retries (at once, eagerly, in tests)
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 3, "ok-3")
    assert [(a.outcome, a.error) for a in delivery.history.all()] == [
        ("retry", "provider error HTTP 502"), ("retry", "timeout: slow"), ("sent", ""),
    ]  # fmt: skip


def test_retries_stop_after_the_last_attempt(alpha, offline_reply, smsru):
    smsru.side_effect = lambda request: httpx.Response(503)
    notification = offline_reply()
    Preference.objects.create(user=notification.recipient, email=False)
    _dispatch(notification, now=_daytime(alpha.clinic))
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts) == ("failed", services.MAX_ATTEMPTS)
    assert smsru.call_count == services.MAX_ATTEMPTS


def test_a_refused_number_fails_at_once_with_the_reason(alpha, offline_reply, smsru):
    smsru.side_effect = lambda request: httpx.Response(
        200,
        json={"status": "OK", "status_code": 100, "sms": {"x": {"status": "ERROR", "status_code": 202, "status_text": "Invalid number"}}},
    )
    notification = offline_reply()
    _dispatch(notification, now=_daytime(alpha.clinic))
    delivery = Delivery.objects.get(notification=notification, channel="sms")
    assert delivery.status == "failed" and "Invalid number" in delivery.last_error
    assert smsru.call_count == 1


def test_a_worker_killed_after_sending_never_sends_the_sms_twice(alpha, offline_reply, smsru):
    """The provider accepted the SMS, then the worker died before writing the status."""

    class WorkerKilled(BaseException):
        pass

    received = []

    def accept_then_die(request):
        received.append(request)  # SMS.ru has it now
        raise WorkerKilled

    notification = offline_reply()
    Preference.objects.create(user=notification.recipient, email=False)
    smsru.side_effect = accept_then_die
    with pytest.raises(WorkerKilled):
        _dispatch(notification, now=_daytime(alpha.clinic))
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == "sending"

    deliver.apply_async((delivery.pk,), task_id=delivery.sending_task)  # acks_late: the broker hands the same task to another worker
    delivery.refresh_from_db()
    assert len(received) == 1  # a second send would have reached the same route
    assert delivery.status == "unknown" and "ушло ли SMS, неизвестно" in delivery.last_error  # in the clinic's language
    assert [a.outcome for a in delivery.history.all()] == [DeliveryAttempt.Outcome.INTERRUPTED]


def test_another_task_leaves_a_delivery_a_live_worker_is_sending(alpha, offline_reply, smsru):
    """Only the claiming task's own redelivery, or the sweep after the stuck threshold, may take a `sending` delivery over."""
    notification = offline_reply()
    Preference.objects.create(user=notification.recipient, email=False)
    ids = services.notifications_dispatch_batch(notification_ids=[notification.pk], now=_daytime(alpha.clinic))
    Delivery.objects.filter(pk__in=ids).update(status="sending", attempts=1, sending_since=timezone.now(), sending_task="live-task")

    deliver.delay(ids[0])  # e.g. the sweep queued it again while its holder is still at work

    delivery = Delivery.objects.get(pk=ids[0])
    assert (delivery.status, delivery.sending_task, smsru.call_count) == ("sending", "live-task", 0)


def test_the_sweep_runs_as_a_beat_task(alpha, offline_reply, smsru, settings):
    notification = offline_reply()
    Notification.objects.filter(pk=notification.pk).update(urgent=True, not_before=None)  # whatever the hour; the offline minutes are over
    with TestCase.captureOnCommitCallbacks(execute=True):
        dispatch_due_notifications.delay()
    assert smsru.call_count == 1
    assert "dispatch-due-notifications" in settings.CELERY_BEAT_SCHEDULE


def test_staff_get_email_not_sms(alpha, anna_thread, smsru):
    from messaging.services import send_message, thread_assign

    alpha.operator.email = "olga@alpha.ru"
    alpha.operator.save()
    thread_assign(actor=alpha.operator, thread=anna_thread, assignee=alpha.operator)
    send_message(thread=anna_thread, actor=anna_thread.patient.user, text="Is the clinic open on Sunday?")
    notification = Notification.objects.get(recipient=alpha.operator)
    _dispatch(notification, now=_daytime(alpha.clinic))
    assert smsru.call_count == 0
    assert mail.outbox[0].to == ["olga@alpha.ru"] and f"/admin/inbox/{anna_thread.pk}/" in mail.outbox[0].body
    assert f.PatientFactory  # factories stay importable here for the next tests


def test_an_operator_learns_by_email_that_a_thread_was_given_to_them(alpha, anna_thread, smsru):
    from messaging.services import thread_assign

    alpha.operator.email = "olga@alpha.ru"
    alpha.operator.save()
    thread_assign(actor=alpha.manager, thread=anna_thread, assignee=alpha.operator)
    thread_assign(actor=alpha.operator, thread=anna_thread, assignee=None)
    thread_assign(actor=alpha.operator, thread=anna_thread, assignee=alpha.operator)  # taking it oneself: no e-mail
    notification = Notification.objects.get(kind="assigned")
    assert notification.recipient == alpha.operator
    _dispatch(notification, now=_daytime(alpha.clinic))
    assert [m.to for m in mail.outbox] == [["olga@alpha.ru"]]
    assert f"/admin/inbox/{anna_thread.pk}/" in mail.outbox[0].body


def test_a_worker_killed_mid_batch_resends_only_what_never_reached_the_provider(alpha, anna_thread, offline_reply, smsru):
    """Batch of three: the first is accepted, the worker dies inside the second call, the third was never tried."""
    from messaging.services import send_message

    Preference.objects.create(user=anna_thread.patient.user, email=False)
    threads = [anna_thread] + [f.ThreadFactory(clinic=alpha.clinic, patient=f.PatientFactory()) for _ in range(2)]
    for thread, text in zip(threads, ("one", "two", "three"), strict=True):
        send_message(thread=thread, actor=alpha.operator, text=text)
    ids = services.notifications_dispatch_batch(
        notification_ids=list(Notification.objects.values_list("pk", flat=True)), now=_daytime(alpha.clinic)
    )  # on-commit queueing not run: this test hands the batch over itself
    assert len(ids) == 3

    class WorkerKilled(BaseException):
        pass

    received = []

    def accept_once_then_die(request):
        received.append(request)
        if len(received) == 2:
            raise WorkerKilled
        return httpx.Response(
            200,
            json={"status": "OK", "status_code": 100, "sms": {"x": {"status": "OK", "status_code": 100, "sms_id": f"id-{len(received)}"}}},
        )

    smsru.side_effect = accept_once_then_die
    with pytest.raises(WorkerKilled):
        services.deliveries_send(delivery_ids=ids, task_id="batch-task")
    assert list(Delivery.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True)) == ["sending"] * 3

    deliver_batch.apply_async((ids,), task_id="batch-task")  # the same task, redelivered to another worker
    first, second, third = Delivery.objects.filter(pk__in=ids).order_by("pk")
    assert (first.status, second.status, third.status) == ("sent", "unknown", "sent")
    assert len(received) == 3  # the first was not sent again, the second not retried, the third sent once
    assert [a.outcome for a in third.history.all()] == ["interrupted", "sent"]


def test_a_burst_of_five_messages_makes_one_notice_after_the_clinics_minutes(api, alpha, anna_thread, smsru):
    alpha.clinic.offline_notice_minutes = 5
    alpha.clinic.save()
    Preference.objects.create(user=anna_thread.patient.user, email=False)
    api.force_authenticate(alpha.operator)
    for n in range(1, 6):
        assert api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": f"part {n} of your results"}, format="json").status_code == 201
    notification = Notification.objects.get(recipient=anna_thread.patient.user)
    assert notification.not_before == notification.created_at + timedelta(minutes=5)

    assert _sweep(now=notification.not_before - timedelta(seconds=1)) == 0  # still within the clinic's minutes
    _sweep(now=max(notification.not_before, _daytime(alpha.clinic)))
    assert len(_sms_texts(smsru)) == 1
    assert "part 5 of your results" in _sms_texts(smsru)[0]  # the newest words


def test_read_within_the_minutes_sends_nothing(api, alpha, anna, anna_thread, smsru):
    api.force_authenticate(alpha.operator)
    api.post(f"/api/threads/{anna_thread.pk}/messages/", {"text": "See you tomorrow"}, format="json")
    api.force_authenticate(anna.user)
    assert api.post(f"/api/threads/{anna_thread.pk}/read/", {}, format="json").status_code == 200
    notification = Notification.objects.get(recipient=anna.user)
    _dispatch(notification, now=_daytime(alpha.clinic))
    notification.refresh_from_db()
    assert (notification.status, notification.skip_reason) == ("skipped", "read")
    assert smsru.call_count == 0
