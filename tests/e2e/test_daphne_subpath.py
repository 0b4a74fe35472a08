"""Variant 2: two daphne processes on their own sockets behind one upstream (the Channels docs' shape), under /sub."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import STATIC_MARKER, STATIC_MARKER_TEXT, Stack, running_stack
from tests.e2e.ws import clients_on_distinct_pids, handshake_status
from tests.procs import http_get

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-daphne")]

PREFIX = "/sub"


@pytest.fixture(scope="module")
def stack(static_root: Path) -> Iterator[Stack]:
    servers = [
        (f"daphne{i}", ["--server", "daphne", "--uds", f"{{workdir}}/app-{i}.sock"], f"app-{i}.sock") for i in range(2)
    ]
    render_args = ["--server", "daphne", "--processes", "2", "--uds", "{workdir}/app.sock"]
    with running_stack(static_root, "dap", servers, render_args, FORCE_SCRIPT_NAME=PREFIX) as stack:
        yield stack


def test_upstream_has_both_daphne_sockets(stack: Stack) -> None:
    for server in stack.servers:
        assert f"server unix:{server.address};" in stack.site_conf


def test_pages_under_the_prefix(stack: Stack) -> None:
    home = http_get(stack.address, f"{PREFIX}/")
    assert home.status == 200
    # Links and assets carry the prefix (FORCE_SCRIPT_NAME, relative STATIC_URL).
    css = re.search(rb'href="([^"]+\.css)"', home.body)
    assert css is not None and css.group(1).startswith(f"{PREFIX}/static/".encode()), home.body
    # ...and nginx serves the hashed file the page names, cached for good.
    asset = http_get(stack.address, css.group(1).decode())
    assert asset.status == 200
    assert "immutable" in asset.headers["cache-control"]
    assert http_get(stack.address, "/").status == 404  # nothing outside the prefix
    redirect = http_get(stack.address, PREFIX)
    assert (redirect.status, redirect.headers["location"].endswith(f"{PREFIX}/")) == (301, True)
    who = http_get(stack.address, f"{PREFIX}/whoami/", {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
    seen = who.json()
    print(f"GET {PREFIX}/ 200; / 404; {PREFIX} 301; whoami with spoofed headers {seen}")
    assert (seen["script_name"], seen["remote_addr"], seen["scheme"]) == (PREFIX, "127.0.0.1", "http")


def test_static_under_the_prefix_served_by_nginx(stack: Stack) -> None:
    response = http_get(stack.address, f"{PREFIX}/static/{STATIC_MARKER}")
    assert (response.status, response.body.decode()) == (200, STATIC_MARKER_TEXT)
    assert http_get(stack.servers[0].address, f"{PREFIX}/static/{STATIC_MARKER}").status == 404


def test_readiness_under_the_prefix(stack: Stack) -> None:
    response = http_get(stack.address, f"{PREFIX}/-/ready")
    assert response.status == 200, response.body


def test_two_daphne_processes_exchange_messages(stack: Stack) -> None:
    room = f"{PREFIX}/ws/chat/daphne/"
    server_pids = {s.proc.pid for s in stack.servers if s.proc}

    async def run() -> list[int]:
        a, b = await clients_on_distinct_pids(stack.address, room)
        try:
            await a.send("one")
            await b.send("two")
            await asyncio.gather(a.expect(["one", "two"]), b.expect(["one", "two"]))
            return [a.pid, b.pid]
        finally:
            await a.close()
            await b.close()

    pids = asyncio.run(run())
    print(f"daphne processes {sorted(server_pids)}; clients on {pids} exchanged messages")
    assert set(pids) == server_pids


def test_websocket_origin_checked_under_the_prefix(stack: Stack) -> None:
    room = f"{PREFIX}/ws/chat/daphne/"

    async def statuses() -> tuple[int, int]:
        return (
            await handshake_status(stack.address, room, origin="http://evil.example"),
            await handshake_status(stack.address, room, origin=None),
        )

    assert asyncio.run(statuses()) == (403, 403)
