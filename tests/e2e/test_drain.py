"""Draining WebSockets (issue 16), per server: real nginx, Redis and a 2-process server, 200 chat clients.

``python -m deploykit.drain start --wait``, run with the server's environment (as
systemd's ExecStop= and the Kubernetes preStop hook run it), must close every
WebSocket with 1012, spread over DRAIN_TIMEOUT instead of all at once, after each
consumer's websocket_disconnect left its group; meanwhile new handshakes are refused
and readiness answers 503. Before the drain file exists, nothing closes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import drains
from tests.e2e.conftest import Stack, running_stack
from tests.procs import REPO, manage

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-drain")]

SERVERS = ["uvicorn", "daphne", "gunicorn", "granian", "hypercorn"]
#: The window: short, so that five servers fit the suite's budget.
DRAIN_TIMEOUT = 4
CLIENTS = 200
ROOM = "drain"
PATH = f"/ws/chat/{ROOM}/"


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
    return drains.server_environment(manage(stack.env, "runasgi", "--print-command", *stack.servers[0].args))


@pytest.mark.timeout(180)
def test_drain_closes_every_websocket_with_1012_spread_over_the_window(stack: Stack) -> None:
    name = stack.servers[0].name
    site = drains.DrainSite(
        label=name,
        address=stack.address,
        sockets=[server.address for server in stack.servers],
        env=stack.env,
        server_env=server_environment(stack),
        cwd=REPO,
        redis=stack.redis,
        group=f"chat.{ROOM}",
        room=ROOM,
        clients=CLIENTS,
        window=DRAIN_TIMEOUT,
        # daphne's autobahn refuses to send 1012 (only 1000 and 3000-4999): 1000 there.
        close_code=1000 if name.startswith("daphne") else 1012,
    )
    drains.drain_and_assert(site)


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
        clients = await drains.connect_all(undrained.address, PATH, CLIENTS)
        watchers = [asyncio.ensure_future(drains.closed_at(c, time.time() + 20)) for c in clients]
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
