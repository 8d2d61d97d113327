"""The baseline's task: the cheapest thing a worker can do for one message (count it in Redis)."""

import redis
from celery import shared_task
from django.conf import settings

_client = None


@shared_task(ignore_result=True)
def bench_noop() -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    _client.incr("bench:noop")
