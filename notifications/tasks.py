"""Delivery tasks: the outbox's deliveries, the sweep that dispatches due notifications, one-time codes.

A code is short-lived and urgent, so it is simply retried a few times within its
lifetime and then given up, outside the outbox.
"""

import logging

from celery import shared_task
from django.core.mail import send_mail
from django.utils.translation import gettext as _

from accounts.models import LoginCode
from notifications import services
from notifications.sms import SmsError, sms_provider

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=3, acks_late=True)
def deliver_login_code(self, *, login_code_id: int, code: str) -> str:
    row = LoginCode.objects.filter(pk=login_code_id, used_at__isnull=True, superseded=False).first()
    if row is None:
        return "skipped: code already used or superseded"
    text = _("Your code: %(code)s. Valid for 5 minutes. Do not tell it to anyone.") % {"code": code}
    if row.channel == LoginCode.Channel.SMS:
        try:
            message_id = sms_provider().send(phone=row.destination, text=text)
        except SmsError as exc:
            if exc.retryable and self.request.retries < self.max_retries:
                raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 1)) from exc
            logger.error("Code for %s not delivered: %s", row.destination, exc)
            return f"failed: {exc}"
        return f"sent: {message_id}"
    send_mail(_("Your sign-in code"), text, None, [row.destination])
    return "sent: e-mail"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=services.MAX_ATTEMPTS, ignore_result=True)
def deliver(self, delivery_id: int) -> None:
    """Send one delivery. acks_late + reject_on_worker_lost: a killed worker's task runs again, and
    delivery_send then refuses to send twice (the delivery is still marked `sending`)."""
    try:
        services.delivery_send(delivery_id=delivery_id)
    except services.TryAgain as exc:
        raise self.retry(countdown=min(15 * 2 ** (exc.attempts - 1), 900)) from exc


DISPATCH_BATCH = 200


@shared_task(ignore_result=True)
def dispatch_due_notifications() -> int:
    """The beat sweep fans out: batches of due notifications, so workers share a backlog."""
    due = services.due_notification_ids()
    for start in range(0, len(due), DISPATCH_BATCH):
        dispatch_notifications.delay(due[start : start + DISPATCH_BATCH])
    return len(due)


@shared_task(acks_late=True, ignore_result=True)
def dispatch_notifications(notification_ids: list[int]) -> None:
    services.notifications_dispatch_batch(notification_ids=notification_ids)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_batch(self, delivery_ids: list[int]) -> None:
    """Send a batch; those with a temporary error go on alone, each with its own backoff."""
    for delivery_id, attempts, _error in services.deliveries_send(delivery_ids=delivery_ids):
        deliver.apply_async((delivery_id,), countdown=min(15 * 2 ** (attempts - 1), 900))


@shared_task(ignore_result=True)
def queue_visit_reminders() -> int:
    return services.visit_reminders_queue()


@shared_task(ignore_result=True)
def queue_personal_reminders() -> int:
    return services.personal_reminders_queue()
