"""The Redis CHANNEL_LAYERS that ``deployconfig channels`` writes, against a real Redis.

Two failures the generated host options prevent (redis-py 8, channels_redis 4.3):
- a read timeout at or below channels_redis's 5 s BZPOPMIN crashes every consumer
  idle for 5 s (redis-py's default is 5 s: channels_redis#422);
- any finite read timeout makes a cancelled receive (a WebSocket disconnect, a
  graceful restart) hang until the next message: measured 30 of 150 with 10 s,
  and uvicorn then spent its whole graceful timeout on one restart in six.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from django.utils.module_loading import import_string

from deploykit.plan import build_plan
from deploykit.targets.channels import Channels
from tests.procs import running_redis, short_tmpdir

# Starts a real Redis: not in the fast loop (pytest -m "not e2e").
pytestmark = pytest.mark.e2e

#: Cancellations tried while messages flow; 20% hung with a finite read timeout.
TRIALS = 60


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    workdir = short_tmpdir("layer")
    try:
        with running_redis(workdir) as server:
            yield server.url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def generated_layer(redis_url: str) -> Any:
    """The layer built from what ``deployconfig channels`` writes, executed as settings.py would."""
    with override_settings(DEPLOYKIT={"REDIS_URL": redis_url}):
        content = Channels(build_plan()).render()
    namespace: dict[str, Any] = {}
    exec(compile(content, "channel_layers.py", "exec"), namespace)
    config = namespace["CHANNEL_LAYERS"]["default"]
    return import_string(config["BACKEND"])(**config["CONFIG"])


def test_an_idle_receive_outlives_redis_pys_default_read_timeout(redis_url: str) -> None:
    async def scenario() -> tuple[dict[str, Any], float]:
        layer = generated_layer(redis_url)
        channel = await layer.new_channel()
        started = time.monotonic()

        async def later() -> None:
            await asyncio.sleep(7)  # past redis-py's 5 s and the layer's 5 s pop
            await layer.send(channel, {"type": "late"})

        sender = asyncio.ensure_future(later())
        message = await asyncio.wait_for(layer.receive(channel), 15)
        await sender
        await layer.flush()
        return message, time.monotonic() - started

    message, waited = asyncio.run(scenario())
    assert message == {"type": "late"}
    assert waited >= 7


def test_cancelled_receives_finish_at_once_while_messages_flow(redis_url: str) -> None:
    async def trial(layer: Any, delay: float) -> float:
        # Two consumers of one process share the layer's receive lock, as two WebSockets do.
        channels = [await layer.new_channel() for _ in range(2)]
        stop = asyncio.Event()

        async def sender() -> None:
            while not stop.is_set():
                for channel in channels:
                    await layer.send(channel, {"type": "chat"})
                await asyncio.sleep(0.005)

        async def consumer(channel: str) -> None:
            while True:
                await layer.receive(channel)

        feeding = asyncio.ensure_future(sender())
        consumers = [asyncio.ensure_future(consumer(channel)) for channel in channels]
        await asyncio.sleep(delay)
        started = time.monotonic()
        for task in consumers:
            task.cancel()
        _, pending = await asyncio.wait(consumers, timeout=3)
        took = time.monotonic() - started
        for task in pending:  # hung: cancel again so the run can end
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)
        stop.set()
        await feeding
        return took

    async def scenario() -> list[float]:
        layer = generated_layer(redis_url)
        rng = random.Random(1)
        took = [await trial(layer, rng.uniform(0.01, 0.2)) for _ in range(TRIALS)]
        await layer.flush()
        return took

    took = asyncio.run(scenario())
    slow = [round(t, 2) for t in took if t > 1]
    assert slow == [], f"{len(slow)} of {TRIALS} cancelled receives hung: {slow}"
