"""The Redis fast path of messaging.realtime: channels_redis' group_send, done synchronously.

Services broadcast from synchronous code after commit. Through the layer's public async
`group_send` that means handing a coroutine to an event loop thread and a round trip (or four,
with the core layer) per group; measured with bench/send_message.py it costs about 40% more
CPU per message than this (figures in bench/README.md), which on a quiet machine takes
send_message below half the raw baseline. So here the layer's own keys, channel names,
serializer and expiry and capacity rules are applied from the calling thread on a blocking
connection pool, and daphne's `receive` cannot tell the difference.

That leans on channels_redis' private names (`_consistent_hash`, `_group_key`,
`_map_channel_keys_to_connection`, `_kwargs`). They live in this module only, and only for
the major version they were written against (SUPPORTED_MAJOR): on any other, `serves` is
False and realtime uses the public group_send. tests/messaging/test_broadcast.py checks,
against both real layers on Redis (CI runs it), that this path and group_send deliver the same.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis
import redis.sentinel

try:
    import channels_redis
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from channels_redis.utils import _consistent_hash, decode_hosts
except ImportError:  # pragma: no cover - channels_redis is in requirements.txt
    channels_redis = None
    RedisChannelLayer = RedisPubSubChannelLayer = None

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0  # seconds a broadcast may block on Redis before it is given up (and logged)
SUPPORTED_MAJOR = 4  # the channels_redis major version whose internals this module mirrors


def _version_supported() -> bool:
    version = getattr(channels_redis, "__version__", "")
    if version.split(".")[0] == str(SUPPORTED_MAJOR):
        return True
    if channels_redis is not None:
        logger.warning("realtime: channels_redis %s is not %s.x: broadcasting through its public group_send", version, SUPPORTED_MAJOR)
    return False


VERSION_SUPPORTED = _version_supported()


def is_redis_layer(layer: Any) -> bool:
    return any(cls is not None and isinstance(layer, cls) for cls in (RedisChannelLayer, RedisPubSubChannelLayer))


def serves(layer: Any) -> bool:
    """This path can send for `layer` (call from synchronous code only)."""
    return VERSION_SUPPORTED and is_redis_layer(layer)


def send(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """(group, layer message) pairs, sent as the layer's group_send would; failures are logged, never raised."""
    if RedisPubSubChannelLayer is not None and isinstance(layer, RedisPubSubChannelLayer):
        _RedisPubSubSender.send(layer, sends)
    else:
        _RedisGroupSender.send(layer, sends)


# Per group: drop memberships older than the group expiry, then list the channels.
_MEMBERS = """
local members = {}
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, ARGV[1])
    members[i] = redis.call('ZRANGE', KEYS[i], 0, -1)
end
return members
"""

# Per channel key (one per daphne process): drop expired messages, then add the new one unless the
# channel is at capacity; the same steps as channels_redis' group_send, for all groups of an event at once.
_DELIVER = """
local n = #KEYS
local expired_before = ARGV[2 * n + 1]
local now = ARGV[2 * n + 2]
local expiry = ARGV[2 * n + 3]
local over_capacity = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, expired_before)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


class _RedisGroupSender:
    """channels_redis' group_send done synchronously: two Redis round trips per event (one if no socket listens).

    Services broadcast from synchronous code after commit. Through the layer's own
    `group_send` that means handing a coroutine to an event loop thread and four round
    trips per group (most of a message send; bench/send_message.py's breakdown).
    Here the members of all the event's groups are read with one script and
    the messages are queued with one script, from the calling thread, on a blocking
    connection pool per process. The keys, the serialized messages (the layer's own
    serializer, `__asgi_channel__` per process-local channel) and the expiry and capacity
    rules are the layer's, so daphne's `receive` cannot tell the difference; the
    realtime tests run against the real layer on Redis.
    """

    _lock = threading.Lock()
    _clients: dict[tuple[int, int, int], tuple[Any, Any, Any]] = {}  # (pid, id(layer), host) -> (client, members, deliver)

    @classmethod
    def _client(cls, layer: Any, index: int) -> tuple[Any, Any, Any]:
        key = (os.getpid(), id(layer), index)  # a forked worker opens its own connections
        found = cls._clients.get(key)
        if found is None:
            with cls._lock:
                found = cls._clients.get(key)
                if found is None:
                    client = redis.Redis(connection_pool=_blocking_pool(layer.hosts[index]))
                    found = cls._clients[key] = (client, client.register_script(_MEMBERS), client.register_script(_DELIVER))
        return found

    @classmethod
    def send(cls, layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            cls._send(layer, sends)
        except Exception:  # the database already holds the truth; clients re-fetch
            logger.exception("realtime: could not send %s", [(group, message["event"]) for group, message in sends])

    @classmethod
    def _send(cls, layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
        by_host: dict[int, list[str]] = {}
        for group in dict.fromkeys(group for group, _message in sends):
            assert layer.require_valid_group_name(group), "Group name not valid"
            by_host.setdefault(layer.consistent_hash(group), []).append(group)
        now = time.time()
        # Who is in each group (expired memberships dropped first), one round trip per Redis host.
        members: dict[str, list[str]] = {}
        for index, host_groups in by_host.items():
            replies = cls._client(layer, index)[1](keys=[layer._group_key(g) for g in host_groups], args=[int(now) - layer.group_expiry])
            for group, names in zip(host_groups, replies, strict=True):
                members[group] = [name.decode("utf8") for name in names]
        # One message per group and channel key (a daphne process), as channels_redis sends it.
        queued: dict[int, list[tuple[str, bytes, int]]] = {}
        for group, message in sends:
            if not members[group]:
                continue
            to_host, messages, capacities = layer._map_channel_keys_to_connection(members[group], message)
            for index, channel_keys in to_host.items():
                queued.setdefault(index, []).extend((key, messages[key], capacities[key]) for key in channel_keys)
        for index, items in queued.items():
            keys = [key for key, _m, _c in items]
            args: list[Any] = [m for _k, m, _c in items] + [c for _k, _m, c in items]
            args += [int(now) - int(layer.expiry), now, layer.expiry]
            over = cls._client(layer, index)[2](keys=keys, args=args)
            if over:
                logger.info("realtime: %s of %s channels over capacity", over, len(items))


class _RedisPubSubSender:
    """channels_redis' pub/sub layer's group_send, synchronously: one PUBLISH per group, pipelined.

    With that layer (settings.REALTIME_LAYER, the default) each socket server subscribes to
    the groups of its sockets and Redis pushes every event to it: no per-message polling
    and queue keeping on the server, which under load was most of the time from commit to
    screen. Channel names and serialization are the layer's own.
    """

    _lock = threading.Lock()
    _clients: dict[tuple[int, int, int], Any] = {}  # (pid, id(layer), shard) -> redis.Redis

    @classmethod
    def send(cls, layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            hosts = decode_hosts(layer._kwargs.get("hosts"))
            prefix = layer._kwargs.get("prefix", "asgi")
            pipes: dict[int, Any] = {}
            for group, message in sends:
                channel = f"{prefix}__group__{group}"  # RedisPubSubLoopLayer._get_group_channel_name
                index = _consistent_hash(channel, len(hosts))
                if index not in pipes:
                    pipes[index] = cls._client(hosts, id(layer), index).pipeline(transaction=False)
                pipes[index].publish(channel, layer.serialize(message))
            for pipe in pipes.values():
                pipe.execute()
        except Exception:  # the database already holds the truth; clients re-fetch
            logger.exception("realtime: could not send %s", [(group, message["event"]) for group, message in sends])

    @classmethod
    def _client(cls, hosts: list[dict[str, Any]], layer_id: int, index: int) -> Any:
        key = (os.getpid(), layer_id, index)  # a forked worker opens its own connections
        client = cls._clients.get(key)
        if client is None:
            with cls._lock:
                client = cls._clients.get(key)
                if client is None:
                    client = cls._clients[key] = redis.Redis(connection_pool=_blocking_pool(hosts[index]))
        return client


def _blocking_pool(host: dict[str, Any]) -> Any:
    """A synchronous pool for one host of the layer's configuration (channels_redis.utils.create_pool, blocking).

    Timeouts are capped at SEND_TIMEOUT: the layer's own may be long for its blocking pops,
    but a hung Redis must not hold a request that already committed.
    """
    host = dict(host)
    host["socket_timeout"] = min(host.get("socket_timeout") or SEND_TIMEOUT, SEND_TIMEOUT)
    host["socket_connect_timeout"] = min(host.get("socket_connect_timeout") or SEND_TIMEOUT, SEND_TIMEOUT)
    if "address" in host:
        return redis.ConnectionPool.from_url(host.pop("address"), **host)
    master_name = host.pop("master_name", None)
    if master_name is not None:
        sentinels = host.pop("sentinels")
        sentinel_kwargs = host.pop("sentinel_kwargs", None)
        return redis.sentinel.SentinelConnectionPool(
            master_name, redis.sentinel.Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs), **host
        )
    return redis.ConnectionPool(**host)
