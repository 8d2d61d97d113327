"""Celery application. Tasks are thin: they take ids, re-fetch and call one service."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic_crm.settings")

app = Celery("clinic_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.celeryd_init.connect
@signals.beat_init.connect
def _connection_per_task(**kwargs) -> None:
    """Worker and beat processes open one connection per task instead of keeping a pool.

    A prefork child runs one task at a time and Celery closes its connections when the task
    ends (with a pool configured, its Django fix-up closes the whole pool there, threads and
    all, and a new one starts with the next task). Without the pool a worker holds at most
    --concurrency connections and beat one (README "Database connections"). The worker's
    signal comes before its first query, and prefork children inherit the setting; beat's
    scheduler has read its schedule through a pool by the time beat_init is sent, so that
    connection goes back and the pool is closed first.
    """
    from django.db import connections

    connection = connections["default"]
    if connection.settings_dict["OPTIONS"].get("pool"):
        connection.close()
        connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper, the only one with a pool
        connection.settings_dict["OPTIONS"].pop("pool")
