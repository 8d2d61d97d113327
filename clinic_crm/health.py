"""/health/: database, cache, channel layer and Celery broker (django-health-check)."""

import dataclasses
import uuid

from channels.layers import get_channel_layer
from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class ChannelLayer(HealthCheck):
    """Send a message to a fresh channel and read it back."""

    async def run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise ServiceUnavailable("No channel layer configured")
        channel = await layer.new_channel("health.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise ServiceUnavailable("Channel layer returned another message")


@dataclasses.dataclass
class CeleryBroker(HealthCheck):
    """Connect to the broker. In-process (eager) mode has no broker to reach: that is fine."""

    def run(self) -> None:
        from clinic_crm.celery import app

        if settings.CELERY_TASK_ALWAYS_EAGER:
            return
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # kombu raises transport-specific errors
            raise ServiceUnavailable(f"Broker unreachable: {type(exc).__name__}") from exc


health_view = HealthCheckView.as_view(checks=[Database, Cache, ChannelLayer, CeleryBroker])
