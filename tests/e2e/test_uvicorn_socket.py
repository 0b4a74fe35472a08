"""Variant 1, the default production shape: nginx -> unix socket -> uvicorn, 2 workers, Redis channel layer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import STATIC_MARKER, STATIC_MARKER_TEXT, Stack, running_stack
from tests.e2e.procs import http_get
from tests.e2e.ws import clients_on_distinct_pids, handshake_status

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-uvicorn")]

ROOM = "/ws/chat/lobby/"


@pytest.fixture(scope="module")
def stack(static_root: Path) -> Iterator[Stack]:
    args = ["--server", "uvicorn", "--workers", "2", "--uds", "{workdir}/app.sock"]
    with running_stack(static_root, "uvi", [("uvicorn", args, "app.sock")], args) as stack:
        yield stack


def test_home_page_through_nginx(stack: Stack) -> None:
    response = http_get(stack.address, "/")
    assert response.status == 200
    assert b"deploykit chat" in response.body
    print(f"GET / -> {response.status}, server startup {stack.startup_seconds[0]:.1f}s")


def test_static_file_served_by_nginx_not_django(stack: Stack) -> None:
    through_nginx = http_get(stack.address, f"/static/{STATIC_MARKER}")
    assert through_nginx.status == 200
    assert through_nginx.body.decode() == STATIC_MARKER_TEXT
    # The app itself does not have it: nginx read it from STATIC_ROOT.
    assert http_get(stack.servers[0].address, f"/static/{STATIC_MARKER}").status == 404
    print(f"static through nginx: 200 {through_nginx.headers.get('content-type')}; from the app socket: 404")


def test_readiness_through_nginx(stack: Stack) -> None:
    response = http_get(stack.address, "/-/ready")
    assert response.status == 200, response.body
    assert response.json() == {"channel_layer": "ok", "database": "ok", "status": "ok"}


def test_spoofed_forwarded_headers_are_overwritten(stack: Stack) -> None:
    response = http_get(stack.address, "/whoami/", {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
    assert response.status == 200
    seen = response.json()
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["is_secure"] is False
    print(f"whoami with spoofed headers: {seen}")


def test_websocket_handshake_needs_our_origin(stack: Stack) -> None:
    async def statuses() -> tuple[int, int, int]:
        return (
            await handshake_status(stack.address, ROOM, origin="http://evil.example"),
            await handshake_status(stack.address, ROOM, origin=None),
            await handshake_status(stack.address, ROOM, origin=f"http://127.0.0.1:{stack.address[1]}"),
        )

    cross, missing, same = asyncio.run(statuses())
    print(f"handshake: cross-origin {cross}, no Origin {missing}, same origin {same}")
    assert (cross, missing, same) == (403, 403, 101)


def test_two_workers_exchange_messages(stack: Stack) -> None:
    async def exchange() -> list[int]:
        a, b = await clients_on_distinct_pids(stack.address, ROOM)
        try:
            await a.send("from a")
            await b.send("from b")
            await a.expect(["from a", "from b"])
            await b.expect(["from a", "from b"])
            return [a.pid, b.pid]
        finally:
            await a.close()
            await b.close()

    pids = asyncio.run(exchange())
    print(f"clients on worker pids {pids} exchanged messages")
    assert pids[0] != pids[1]
