"""messaging.realtime's synchronous senders against the real channels_redis layers (needs REDIS_URL).

Services publish from synchronous code with their own Redis calls, not through the layer's
async group_send; the layer's own receive must still get every event, in each group, once.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from messaging import realtime

pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis layers need REDIS_URL")]


@pytest.mark.parametrize("kind", ["core", "pubsub"])
async def test_an_event_reaches_every_channel_of_its_groups_through_either_redis_layer(monkeypatch, kind):
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = (RedisChannelLayer if kind == "core" else RedisPubSubChannelLayer)(hosts=[{"address": settings.REDIS_URL}], prefix="bcast")
    front_1, front_2 = await layer.new_channel(), await layer.new_channel()
    for channel in (front_1, front_2):
        await layer.group_add("clinic.901.front", channel)
    await layer.group_add("family.901", front_2)  # one socket in two groups hears each group's event
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)
    try:
        await sync_to_async(realtime.send_events)(
            [(["clinic.901.front"], {"type": "message.new", "seq": 7}), (["family.901", "clinic.902.front"], {"type": "typing"})]
        )

        async def texts(channel, count):
            return [json.loads((await asyncio.wait_for(layer.receive(channel), 5))["text"]) for _ in range(count)]

        assert await texts(front_1, 1) == [{"type": "message.new", "seq": 7}]
        assert sorted(e["type"] for e in await texts(front_2, 2)) == ["message.new", "typing"]
        with pytest.raises(TimeoutError):  # nothing more: no duplicates
            await asyncio.wait_for(layer.receive(front_1), 0.3)
    finally:
        await layer.flush()


@pytest.mark.parametrize("kind", ["core", "pubsub"])
async def test_the_fast_path_delivers_what_the_layers_own_group_send_delivers(monkeypatch, kind):
    """messaging.redis_fanout leans on channels_redis internals: a channel must receive the very same messages."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from messaging import redis_fanout

    assert redis_fanout.VERSION_SUPPORTED, "channels_redis changed major version: check redis_fanout against it"
    layer = (RedisChannelLayer if kind == "core" else RedisPubSubChannelLayer)(hosts=[{"address": settings.REDIS_URL}], prefix="same")
    channel = await layer.new_channel()
    await layer.group_add("clinic.903.front", channel)
    await layer.group_add("doctor.903", channel)
    events = [
        (["clinic.903.front", "doctor.903"], {"type": "message.new", "seq": 1, "text": "Привет"}),
        (["family.903"], {"type": "typing"}),
    ]
    sends = [(group, realtime.layer_message(payload)) for groups, payload in events for group in groups]

    async def received(count):
        return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]

    try:
        assert redis_fanout.serves(layer)
        await sync_to_async(redis_fanout.send)(layer, sends)
        fast = await received(2)
        for group, message in sends:
            await layer.group_send(group, message)
        public = await received(2)
        assert fast == public == [realtime.layer_message(events[0][1])] * 2
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.3)
    finally:
        await layer.flush()


async def test_an_unknown_channels_redis_major_version_falls_back_to_the_public_group_send(monkeypatch):
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from messaging import redis_fanout

    layer = RedisPubSubChannelLayer(hosts=[{"address": settings.REDIS_URL}], prefix="fallback")
    sent = []

    async def group_send(group, message):
        sent.append((group, message["event"]))

    monkeypatch.setattr(layer, "group_send", group_send)
    monkeypatch.setattr(redis_fanout.channels_redis, "__version__", "99.0.0")
    monkeypatch.setattr(redis_fanout, "VERSION_SUPPORTED", redis_fanout._version_supported())
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)
    assert not redis_fanout.serves(layer)
    await sync_to_async(realtime.send_events)([(["clinic.904.front"], {"type": "thread.updated"})])
    assert sent == [("clinic.904.front", "thread.updated")]
