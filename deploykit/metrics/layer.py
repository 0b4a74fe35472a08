"""The channel layer's side: group sends counted in this process, queue depth read from Redis at scrape time."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from deploykit.metrics import store

#: Keys one scrape looks at per Redis host, at most. SCAN walks the keyspace in steps of
#: SCAN_COUNT, never a KEYS over the whole database, so a scrape costs at most about
#: KEY_BUDGET keys of Redis's time however many channels exist; past it the figures are
#: partial and ``deploykit_channel_layer_scan_complete`` says 0.
KEY_BUDGET = 10_000
SCAN_COUNT = 500
#: Seconds one Redis host may take before the scrape reports it down (the scrape goes on).
TIMEOUT = 1.0


def count_group_sends(layer: Any, counts: Callable[[], memoryview]) -> None:
    """Count every ``group_send`` of ``layer`` (the process's own instance, which consumers and views share).

    Wrapped once per instance; a later call only changes where the counts go.
    """
    if getattr(layer, "_deploykit_counts", None) is None:
        original: Callable[[str, dict[str, Any]], Awaitable[None]] = layer.group_send

        async def group_send(group: str, message: dict[str, Any]) -> None:
            layer._deploykit_counts()[store.GROUP_SENDS] += 1
            await original(group, message)

        layer.group_send = group_send
    layer._deploykit_counts = counts


@dataclass
class Depth:
    """One Redis host of a channels_redis layer, as one scrape saw it."""

    shard: int
    up: bool = False
    complete: bool = False
    #: Channel queues (consumers' channels) holding messages, and the messages in them.
    channels: int = 0
    messages: int = 0
    deepest: int = 0
    groups: int = 0
    group_members: int = 0


def is_redis_layer(layer: Any) -> bool:
    """channels_redis's RedisChannelLayer (Sentinel too): queues in Redis sorted sets.

    The pub/sub layer queues nothing: no depth to report.
    """
    try:
        from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]
    except ImportError:
        return False
    return isinstance(layer, RedisChannelLayer)


async def queue_depth(layer: Any) -> list[Depth]:
    """Every host's queues: channel keys are ``PREFIX + channel`` sorted sets of messages, groups
    ``PREFIX:group:NAME`` sorted sets of channels (channels_redis 4, core.py)."""
    return [await _shard(layer, index) for index in range(layer.ring_size)]


async def _shard(layer: Any, index: int) -> Depth:
    depth = Depth(index)
    try:
        await asyncio.wait_for(_scan(layer.connection(index), layer.prefix, depth), TIMEOUT)
        depth.up = True
    except Exception:  # noqa: BLE001 - a scrape reports a host down, it does not fail
        depth.up = False
    return depth


async def _scan(conn: Any, prefix: str, depth: Depth) -> None:
    group_prefix = f"{prefix}:group:"
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    cursor, seen = 0, 0
    while True:
        cursor, keys = await conn.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
        names = [k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in keys]
        pipe = conn.pipeline(transaction=False)
        for name in names:
            pipe.zcard(name)
        # A key of another type under the prefix answers WRONGTYPE: skipped, not fatal.
        cards = await pipe.execute(raise_on_error=False) if names else []
        for name, card in zip(names, cards, strict=True):
            if not isinstance(card, int):
                continue
            if name.startswith(group_prefix):
                depth.groups += 1
                depth.group_members += card
            elif not name.endswith("$inflight"):  # a receive's backup copy, not a queued message
                depth.channels += 1
                depth.messages += card
                depth.deepest = max(depth.deepest, card)
        seen += len(names)
        if cursor == 0:
            depth.complete = True
            return
        if seen >= KEY_BUDGET:
            return
