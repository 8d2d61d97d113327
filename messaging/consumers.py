"""The one WebSocket a signed-in user keeps open (/ws/).

A staff member or a patient connects with their session cookie; anyone else is
refused. Each user joins their own group so that services can reach all their
tabs. Frames are JSON objects with a `type`; a malformed frame gets an `error`
event and the socket stays open.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from clinics.tenancy.consumers import socket_user_kind


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.kind = await socket_user_kind(user)
        if self.kind is None:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "as": self.kind})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # Decode here rather than in the base class so that bad JSON is answered, not fatal.
        try:
            content = json.loads(text_data or "")
        except (TypeError, ValueError):
            await self.send_json({"type": "error", "reason": "Frame is not valid JSON."})
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_json({"type": "error", "reason": "Frame must be a JSON object with a 'type'."})
            return
        if content["type"] == "ping":
            await self.send_json({"type": "pong"})
            return
        await self.send_json({"type": "error", "reason": f"Unknown frame type '{content['type'][:40]}'."})

    async def user_event(self, event: dict[str, Any]) -> None:
        """Relay an event a service sent to this user's group."""
        await self.send_json(event["payload"])
