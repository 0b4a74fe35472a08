"""The channel layer generated for Redis Sentinel works through a real sentinel, across a failover.

A primary, a replica (replicaof) and one redis-sentinel (quorum 1, short
timeouts) on loopback ports; the CHANNEL_LAYERS that ``deployconfig channels``
writes for the plan delivers a group message, the primary is killed, the
sentinel promotes the replica, and the same layer keeps delivering.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import override_settings
from django.utils.module_loading import import_string

from deploykit.plan import REDIS_BACKEND, build_plan
from deploykit.targets.channels import Channels
from tests.conftest import require_tool
from tests.procs import Proc, free_port, wait_until

# Starts a Redis primary, a replica and redis-sentinel: not in the fast loop (pytest -m "not e2e").
pytestmark = pytest.mark.e2e

MASTER = "mymaster"
#: Short, so the failover takes seconds: the sentinel calls the primary down
#: after this much silence, and with quorum 1 it alone decides to fail over.
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000
#: Every wait is bounded by this many seconds.
WAIT = 20.0


@dataclass
class Trio:
    primary: Proc
    primary_port: int
    replica_port: int
    sentinel_port: int

    def admin(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def master_port(self) -> int | None:
        """The port of the primary the sentinel hands to clients, once it is up (None meanwhile).

        The same test redis-py's SentinelConnectionPool applies: role master,
        neither subjectively nor objectively down.
        """
        state = self.admin(self.sentinel_port).execute_command("SENTINEL", "MASTER", MASTER)
        state = dict(zip(state[::2], state[1::2], strict=True)) if isinstance(state, list) else state
        flags = set(state["flags"].split(","))
        return int(state["port"]) if flags == {"master"} else None


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Trio]:
    server, sentinel = require_tool("redis-server"), require_tool("redis-sentinel")
    ports = [free_port() for _ in range(3)]
    primary_port, replica_port, sentinel_port = ports
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    (tmp_path / "sentinel.conf").write_text(
        f"port {sentinel_port}\n"
        "bind 127.0.0.1\n"
        f"dir {tmp_path}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 1\n"
        f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
    )
    procs: list[Proc] = []
    try:
        # Diskless full sync waits 5 s for more replicas by default; there is one.
        no_delay = ["--repl-diskless-sync-delay", "0"]
        primary = Proc("primary", [server, "--port", str(primary_port), *no_delay, *common], log_dir=tmp_path)
        procs.append(primary)
        replicaof = ["--replicaof", "127.0.0.1", str(primary_port)]
        procs.append(Proc("replica", [server, "--port", str(replica_port), *replicaof, *common], log_dir=tmp_path))
        t = Trio(primary, primary_port, replica_port, sentinel_port)
        wait_until(
            lambda: t.admin(replica_port).info("replication")["master_link_status"] == "up", WAIT, "replica in sync"
        )
        # Started last: its first INFO to the primary lists the replica (the
        # next comes 10 s later).
        procs.append(Proc("sentinel", [sentinel, str(tmp_path / "sentinel.conf")], log_dir=tmp_path))
        wait_until(
            lambda: any(
                r["port"] == str(replica_port) and "s_down" not in r["flags"]
                for r in t.admin(sentinel_port).execute_command("SENTINEL", "REPLICAS", MASTER)
            ),
            WAIT,
            "the sentinel to discover the replica",
        )
        yield t
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=5)


def generated_channel_layers(sentinel_port: int) -> dict[str, Any]:
    """What ``deployconfig channels`` writes for a plan whose layer is Sentinel, executed as settings.py would."""
    hosts = [{"sentinels": [("127.0.0.1", sentinel_port)], "master_name": MASTER}]
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": REDIS_BACKEND, "CONFIG": {"hosts": hosts}}}):
        plan = build_plan()
    assert plan.channel_layer.kind == "sentinel"
    namespace: dict[str, Any] = {}
    exec(compile(Channels(plan).render(), "channel_layers.py", "exec"), namespace)
    layers: dict[str, Any] = namespace["CHANNEL_LAYERS"]
    return layers


async def deliver(layer: Any, channel: str, n: int) -> list[int]:
    """Send message ``n`` to the group and receive it; returns the earlier messages received again first.

    channels_redis keeps a popped message in a backup key until its next receive
    deletes it; when the primary dies before that delete reaches the replica, the
    promoted replica hands the message out once more (seen: message 1 again).
    """
    await asyncio.wait_for(layer.group_send("room", {"type": "chat.message", "n": n}), WAIT)
    again = []
    while True:
        message = await asyncio.wait_for(layer.receive(channel), WAIT)
        assert message["type"] == "chat.message"
        if message["n"] == n:
            return again
        assert message["n"] < n, message  # nothing from the future, nothing invented
        again.append(message["n"])


@pytest.mark.timeout(90)
def test_group_messages_survive_a_sentinel_failover(trio: Trio) -> None:
    config = generated_channel_layers(trio.sentinel_port)["default"]
    assert config["CONFIG"]["hosts"][0]["sentinels"] == [("127.0.0.1", trio.sentinel_port)]
    assert trio.master_port() == trio.primary_port

    async def scenario() -> None:
        layer = import_string(config["BACKEND"])(**config["CONFIG"])
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            await deliver(layer, channel, 1)
            # The group membership is on the replica before the primary dies.
            acked = trio.admin(trio.primary_port).execute_command("WAIT", 1, 2000)
            assert acked == 1
            trio.primary.stop(signal.SIGKILL)
            await asyncio.to_thread(
                wait_until, lambda: trio.master_port() == trio.replica_port, WAIT, "the sentinel to promote the replica"
            )
            # The same layer object, as a running server would hold it.
            again = await deliver(layer, channel, 2)
            assert again in ([], [1])  # at most the one message in flight at the failover
            assert await deliver(layer, channel, 3) == []
        finally:
            await layer.close_pools()

    asyncio.run(scenario())
    assert trio.admin(trio.replica_port).info("replication")["role"] == "master"
