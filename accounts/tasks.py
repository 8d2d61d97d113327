from celery import shared_task

from accounts.services import login_codes_purge


@shared_task
def purge_spent_login_codes() -> int:
    return login_codes_purge()
