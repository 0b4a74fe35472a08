"""A drain run end to end and what it must show (issue 16), whichever project the server runs.

Shared by tests/e2e/test_drain.py (testproject) and tests/e2e/test_drain_projects.py (tests/projects/):
chat clients connect through nginx, ``python -m deploykit.drain start --wait`` runs with the server's
environment (as systemd's ExecStop= and the Kubernetes preStop hook run it), and every WebSocket must close
with 1012 spread over DRAIN_TIMEOUT, after each consumer's websocket_disconnect left its group; meanwhile new
handshakes are refused and readiness answers 503. Before the drain file exists, nothing closes.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from channels_redis.core import RedisChannelLayer
from websockets.exceptions import ConnectionClosed

from tests.e2e.ws import Client, handshake_status, open_client
from tests.procs import PYTHON, Address, RedisServer, http_get


@dataclass(frozen=True)
class DrainSite:
    """One running stack, as the drain run needs it."""

    #: What the report line calls it.
    label: str
    #: nginx, where the clients connect.
    address: Address
    #: Each server process's own socket (readiness asked there: several probes reach every worker).
    sockets: list[Address]
    #: The environment of the stack's commands, and the server's own variables (``runasgi --print-command``).
    env: dict[str, str]
    server_env: dict[str, str]
    #: The drain command's working directory (the project's, as a unit's WorkingDirectory=).
    cwd: Path
    redis: RedisServer
    #: The chat consumer's group for ``room``, as the project names it.
    group: str
    room: str
    clients: int
    window: int
    #: 1012; daphne's autobahn refuses to send it (only 1000 and 3000-4999): 1000 there.
    close_code: int = 1012
    health_path: str = "/-/ready"

    @property
    def path(self) -> str:
        return f"/ws/chat/{self.room}/"

    @property
    def group_key(self) -> str:
        """channels_redis's key for the group (prefix "asgi")."""
        return f"asgi:group:{self.group}"


def server_environment(print_command: str) -> dict[str, str]:
    """The variables the backend writes next to its argv, from ``runasgi --print-command``'s line."""
    return dict(word.split("=", 1) for word in shlex.split(print_command) if "=" in word and not word.startswith("-"))


async def connect_all(address: Address, path: str, count: int) -> list[Client]:
    clients: list[Client] = []
    for start in range(0, count, 25):
        batch = min(25, count - start)
        clients += await asyncio.gather(*(open_client(address, path, timeout=20) for _i in range(batch)))
    return clients


async def closed_at(client: Client, deadline: float) -> tuple[float, int | None]:
    """When (time.time()) and with which code the server closed ``client``; (inf, None) if it stayed open."""
    try:
        while True:
            await asyncio.wait_for(client.conn.recv(), max(0.01, deadline - time.time()))
    except ConnectionClosed as exc:
        return time.time(), exc.rcvd.code if exc.rcvd is not None else None
    except asyncio.TimeoutError:
        return float("inf"), None


def histogram(offsets: list[float], width: float = 0.5) -> str:
    bins: dict[int, int] = {}
    for offset in offsets:
        bins[int(offset // width)] = bins.get(int(offset // width), 0) + 1
    return " ".join(f"[{b * width:.1f},{(b + 1) * width:.1f}):{bins[b]}" for b in sorted(bins))


def ready_statuses(site: DrainSite, count: int = 6) -> set[int]:
    """Readiness as each server process answers it (straight to the sockets: several probes reach both workers)."""
    return {http_get(address, site.health_path).status for address in site.sockets for _ in range(count)}


def drain_and_assert(site: DrainSite, *, processes: int = 2) -> None:
    """Connect ``site.clients``, drain, and assert everything the module docstring says."""
    drain_file = site.server_env["DEPLOYKIT_SERVER_DRAIN_FILE"]
    store = redis.Redis(port=site.redis.port)

    async def scenario() -> dict[str, object]:
        clients = await connect_all(site.address, site.path, site.clients)
        pids = {c.pid for c in clients}
        assert len(pids) == processes, f"the {site.clients} clients reached processes {pids}, not {processes}"
        assert store.zcard(site.group_key) == site.clients
        # No close before the file exists.
        quiet = await asyncio.gather(*(closed_at(c, time.time() + 1.0) for c in clients))
        assert all(code is None for _, code in quiet), "a WebSocket closed before the drain began"
        statuses = ready_statuses(site)
        assert statuses == {200}, f"readiness ({site.health_path}) before the drain answered {statuses}"

        watchers = [asyncio.ensure_future(closed_at(c, time.time() + site.window + 8)) for c in clients]
        # As systemd's ExecStop= runs it: the server's environment names the file and the window.
        drain_env = {**site.env, **site.server_env}
        began = time.time()
        starter = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "deploykit.drain", "start", "--wait", cwd=site.cwd, env=drain_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        await asyncio.sleep(1.2)  # every process has looked at the file (every 0.5 s)
        origin = f"http://127.0.0.1:{site.address[1]}" if not isinstance(site.address, str) else None
        refused = await handshake_status(site.address, site.path, origin=origin)
        readiness = ready_statuses(site)
        output, _ = await asyncio.wait_for(starter.communicate(), site.window + 15)
        waited = time.time() - began
        closes = await asyncio.gather(*watchers)
        return {
            "closes": closes,
            "refused": refused,
            "readiness": readiness,
            "starter": output.decode(),
            "waited": waited,
            "starter_rc": starter.returncode,
        }

    result = asyncio.run(scenario())
    closes: list[tuple[float, int | None]] = result["closes"]  # type: ignore[assignment]
    # From the drain file's time: the drain begins when the file exists.
    began = os.stat(drain_file).st_mtime
    codes = [code for _, code in closes]
    offsets = sorted(at - began for at, _ in closes if at != float("inf"))
    assert offsets, f"no WebSocket closed; codes {set(codes)}; the starter said: {result['starter']}"
    print(
        f"\n{site.label}: {site.clients} clients, {len(offsets)} closed, window {site.window}s; "
        "closes after the drain began: "
        f"min {offsets[0]:.2f}s median {statistics.median(offsets):.2f}s max {offsets[-1]:.2f}s\n"
        f"  histogram: {histogram(offsets)}\n"
        f"  handshake while draining: {result['refused']}; readiness while draining: {result['readiness']}\n"
        f"  drain start --wait returned after {result['waited']:.2f}s: {str(result['starter']).strip()}"
    )
    assert codes.count(site.close_code) == site.clients, f"close codes: { {c: codes.count(c) for c in set(codes)} }"
    assert offsets[0] >= 0
    assert offsets[-1] < site.window + 2.5
    # Spread, not a herd: over most of the window, no 100 ms holding more than a tenth of them.
    assert offsets[-1] - offsets[0] > site.window / 2
    herd = max(sum(1 for o in offsets if s <= o < s + 0.1) for s in offsets)
    assert herd <= max(1, site.clients // 10), f"{herd} closes within 100 ms"
    assert result["refused"] == 403
    assert result["readiness"] == {503}
    assert site.server_env["DEPLOYKIT_SERVER_DRAIN_TIMEOUT"] == str(site.window)
    assert result["starter_rc"] == 0 and "no WebSocket open" in str(result["starter"])
    assert float(result["waited"]) < site.window + 3  # it returned when the last one closed, not at a fixed time
    # Every consumer's websocket_disconnect ran: the group is empty, and a group_send queues nothing for anyone.
    assert store.zcard(site.group_key) == 0
    before = set(store.keys("*"))
    layer = RedisChannelLayer(hosts=[site.redis.url])
    asyncio.run(layer.group_send(site.group, {"type": "chat.message", "message": "anyone?", "pid": 0}))
    assert set(store.keys("*")) == before
    assert os.path.exists(drain_file)
