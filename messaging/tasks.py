"""Timed jobs of conversations (celery beat; in the embedded default they run inside beat)."""

from celery import shared_task

from messaging import services


@shared_task
def wake_snoozed_threads() -> int:
    return services.threads_wake_snoozed()


@shared_task
def purge_stale_sockets() -> int:
    return services.sockets_purge_stale()


@shared_task
def purge_unsent_attachments() -> int:
    return services.attachments_purge_unsent()
