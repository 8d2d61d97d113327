"""Celery application. Tasks are thin: they take ids, re-fetch and call one service."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic_crm.settings")

app = Celery("clinic_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
