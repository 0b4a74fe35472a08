"""Draining WebSockets (issue 16), per server: real nginx, Redis and a 2-process server, 200 chat clients.

``python -m deploykit.drain start --wait``, run with the server's environment (as
systemd's ExecStop= and the Kubernetes preStop hook run it), must close every
WebSocket with 1012, spread over DRAIN_TIMEOUT instead of all at once, after each
consumer's websocket_disconnect left its group; meanwhile new handshakes are refused
and readiness answers 503. Before the drain file exists, nothing closes.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from channels_redis.core import RedisChannelLayer
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Stack, running_stack
from tests.e2e.ws import Client, handshake_status, open_client
from tests.procs import PYTHON, REPO, http_get, manage

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-drain")]

SERVERS = ["uvicorn", "daphne", "gunicorn", "granian", "hypercorn"]
#: The window: short, so that five servers fit the suite's budget.
DRAIN_TIMEOUT = 4
CLIENTS = 200
ROOM = "drain"
PATH = f"/ws/chat/{ROOM}/"
#: channels_redis's key for the room's group (prefix "asgi", the consumer's group "chat.ROOM").
GROUP_KEY = f"asgi:group:chat.{ROOM}"


@pytest.fixture(params=SERVERS)
def stack(request: pytest.FixtureRequest, static_root: Path) -> Iterator[Stack]:
    server = request.param
    if server == "daphne":
        # daphne has no workers: two processes on two sockets (PROCESSES), one drain file.
        # nginx's upstream has both sockets: app-0.sock, app-1.sock.
        servers = [
            (f"daphne-{i}", ["--server", "daphne", "--uds", f"{{workdir}}/app-{i}.sock"], f"app-{i}.sock")
            for i in range(2)
        ]
        render_args = ["--server", server, "--processes", "2", "--uds", "{workdir}/app.sock"]
    else:
        servers = [(server, ["--server", server, "--workers", "2", "--uds", "{workdir}/app.sock"], "app.sock")]
        render_args = ["--server", server, "--uds", "{workdir}/app.sock"]
    with running_stack(
        static_root, f"drain-{server[:3]}", servers, render_args, DEPLOYKIT_DRAIN_TIMEOUT=str(DRAIN_TIMEOUT)
    ) as stack:
        yield stack


def server_environment(stack: Stack) -> dict[str, str]:
    """The variables the backend writes next to its argv (``runasgi --print-command`` shows them)."""
    line = manage(stack.env, "runasgi", "--print-command", *stack.servers[0].args).strip()
    return dict(word.split("=", 1) for word in shlex.split(line) if "=" in word and not word.startswith("-"))


async def connect_all(stack: Stack) -> list[Client]:
    clients: list[Client] = []
    for _ in range(0, CLIENTS, 25):
        clients += await asyncio.gather(*(open_client(stack.address, PATH, timeout=20) for _i in range(25)))
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


def ready_statuses(stack: Stack, count: int = 6) -> set[int]:
    """Readiness as each server process answers it (straight to the sockets: several probes reach both workers)."""
    return {http_get(server.address, "/-/ready").status for server in stack.servers for _ in range(count)}


@pytest.mark.timeout(180)
def test_drain_closes_every_websocket_with_1012_spread_over_the_window(stack: Stack) -> None:
    env = server_environment(stack)
    # The runtime directory's NAME.drain (a server without a drain ignores it: the test then fails on its closes).
    drain_file = env.get("DEPLOYKIT_SERVER_DRAIN_FILE", str(stack.workdir / "testproject.drain"))
    store = redis.Redis(port=stack.redis.port)

    async def scenario() -> dict[str, object]:
        clients = await connect_all(stack)
        pids = {c.pid for c in clients}
        assert len(pids) == 2, f"the 200 clients reached processes {pids}, not two"
        assert store.zcard(GROUP_KEY) == CLIENTS
        # No close before the file exists.
        quiet = await asyncio.gather(*(closed_at(c, time.time() + 1.0) for c in clients))
        assert all(code is None for _, code in quiet), "a WebSocket closed before the drain began"
        assert ready_statuses(stack) == {200}

        watchers = [asyncio.ensure_future(closed_at(c, time.time() + DRAIN_TIMEOUT + 8)) for c in clients]
        # As systemd's ExecStop= runs it: the server's environment names the file and the window.
        drain_env = {**stack.env, **env, "DEPLOYKIT_SERVER_DRAIN_FILE": drain_file}
        began = time.time()
        starter = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "deploykit.drain", "start", "--wait", cwd=REPO, env=drain_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        await asyncio.sleep(1.2)  # every process has looked at the file (every 0.5 s)
        refused = await handshake_status(stack.address, PATH, origin=f"http://127.0.0.1:{stack.address[1]}")
        readiness = ready_statuses(stack)
        output, _ = await asyncio.wait_for(starter.communicate(), DRAIN_TIMEOUT + 15)
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
        f"\n{stack.servers[0].name}: {CLIENTS} clients, {len(offsets)} closed, window {DRAIN_TIMEOUT}s; "
        "closes after the drain began: "
        f"min {offsets[0]:.2f}s median {statistics.median(offsets):.2f}s max {offsets[-1]:.2f}s\n"
        f"  histogram: {histogram(offsets)}\n"
        f"  handshake while draining: {result['refused']}; readiness while draining: {result['readiness']}\n"
        f"  drain start --wait returned after {result['waited']:.2f}s: {str(result['starter']).strip()}"
    )
    # 1012 Service Restart; daphne's autobahn refuses to send it (only 1000 and 3000-4999): 1000 there.
    expected = 1000 if stack.servers[0].name.startswith("daphne") else 1012
    assert codes.count(expected) == CLIENTS, f"close codes: { {c: codes.count(c) for c in set(codes)} }"
    assert offsets[0] >= 0
    assert offsets[-1] < DRAIN_TIMEOUT + 2.5
    # Spread, not a herd: over most of the window, no 100 ms holding more than a tenth of them.
    assert offsets[-1] - offsets[0] > DRAIN_TIMEOUT / 2
    assert max(sum(1 for o in offsets if s <= o < s + 0.1) for s in offsets) <= CLIENTS // 10
    assert result["refused"] == 403
    assert result["readiness"] == {503}
    assert env["DEPLOYKIT_SERVER_DRAIN_TIMEOUT"] == str(DRAIN_TIMEOUT)
    assert result["starter_rc"] == 0 and "no WebSocket open" in str(result["starter"])
    assert float(result["waited"]) < DRAIN_TIMEOUT + 3  # it returned when the last one closed, not at a fixed time
    # Every consumer's websocket_disconnect ran: the group is empty, and a group_send queues nothing for anyone.
    assert store.zcard(GROUP_KEY) == 0
    before = set(store.keys("*"))
    layer = RedisChannelLayer(hosts=[stack.redis.url])
    asyncio.run(layer.group_send(f"chat.{ROOM}", {"type": "chat.message", "message": "anyone?", "pid": 0}))
    assert set(store.keys("*")) == before
    assert os.path.exists(drain_file)


@pytest.fixture
def undrained(static_root: Path) -> Iterator[Stack]:
    args = ["--server", "uvicorn", "--workers", "2", "--uds", "{workdir}/app.sock"]
    with running_stack(
        static_root, "herd", [("uvicorn", args, "app.sock")], args, DEPLOYKIT_DRAIN_TIMEOUT="0"
    ) as stack:
        yield stack


@pytest.mark.timeout(120)
def test_baseline_without_a_drain_a_stop_closes_every_websocket_at_once(undrained: Stack) -> None:
    """Today's stop (DRAIN_TIMEOUT = 0), for comparison: SIGTERM closes all of them in the same instant."""
    assert "DEPLOYKIT_SERVER_DRAIN_FILE" not in server_environment(undrained)

    async def scenario() -> list[tuple[float, int | None]]:
        clients = await connect_all(undrained)
        watchers = [asyncio.ensure_future(closed_at(c, time.time() + 20)) for c in clients]
        await asyncio.sleep(0.2)
        proc = undrained.servers[0].proc
        assert proc is not None
        proc.popen.send_signal(15)  # what systemctl stop / supervisorctl restart send
        return await asyncio.gather(*watchers)

    closes = asyncio.run(scenario())
    times = sorted(at for at, _ in closes if at != float("inf"))
    codes = {code for _, code in closes}
    spread = times[-1] - times[0]
    print(
        f"\nwithout a drain: {len(times)} of {CLIENTS} closed by SIGTERM within {spread * 1000:.0f} ms, codes {codes}"
    )
    assert len(times) == CLIENTS and codes == {1012}
    assert spread < 1.0  # the herd: every client reconnects at once
