"""Background jobs of the appointments app; each only calls a service."""

from celery import shared_task

from appointments import reminders, services


@shared_task(acks_late=True, ignore_result=True)
def offer_freed_slot(visit_id: int) -> None:
    """A visit was cancelled: offer its time to the doctor's waiting list (after the cancellation committed)."""
    services.slot_offer_create(visit_id=visit_id)


@shared_task(ignore_result=True)
def queue_visit_reminders() -> int:
    """The beat sweep that writes visits' confirm requests and reminders into the outbox."""
    return reminders.visit_reminders_queue()
