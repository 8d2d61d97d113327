"""Delivery tasks: the outbox's deliveries, the sweep that dispatches due notifications, the personal reminders' sweep.

The sweep for visit reminders is appointments.tasks.queue_visit_reminders."""

from dataclasses import asdict

from celery import shared_task

from notifications import services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=services.MAX_ATTEMPTS, ignore_result=True)
def deliver(self, delivery_id: int) -> None:
    """Send one delivery. acks_late + reject_on_worker_lost: a killed worker's task runs again (same id), and
    delivery_send then refuses to send twice (the delivery is still marked `sending`)."""
    try:
        services.delivery_send(delivery_id=delivery_id, task_id=self.request.id or "")
    except services.TryAgain as exc:
        raise self.retry(countdown=exc.delay) from exc


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
    for delivery_id, delay, _error in services.deliveries_send(delivery_ids=delivery_ids, task_id=self.request.id or ""):
        deliver.apply_async((delivery_id,), countdown=delay)


@shared_task(acks_late=False, ignore_result=True)
def settle_stuck_deliveries() -> dict[str, int]:
    """The beat sweep for deliveries a dead worker left `sending`. Acknowledged on receipt: a tick lost with its
    worker is replaced by the next one within a minute, rather than coming back after the broker's visibility timeout."""
    return asdict(services.deliveries_settle_stuck())


@shared_task(ignore_result=True)
def queue_personal_reminders() -> int:
    return services.personal_reminders_queue()
