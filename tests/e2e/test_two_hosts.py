"""Variant 4: two instances on TCP ports (two machines) behind one generated upstream, sharing Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, render, running_stack
from tests.e2e.ws import clients_on_distinct_pids
from tests.procs import Nginx, free_port, http_get

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-two-hosts")]


@pytest.fixture(scope="module")
def stack(static_root: Path) -> Iterator[Stack]:
    ports = [free_port(), free_port()]
    servers = [
        (f"host{i}", ["--server", "uvicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}"], port)
        for i, port in enumerate(ports)
    ]
    upstream = ",".join(f"127.0.0.1:{port}" for port in ports)
    with running_stack(static_root, "two", servers, [], DEPLOYKIT_UPSTREAM=upstream) as stack:
        yield stack


@pytest.fixture(scope="module")
def sticky(stack: Stack) -> Iterator[Nginx]:
    """A second nginx in front of the same two instances, from the file rendered with STICKY_SESSIONS on."""
    port = free_port()
    env = {**stack.env, "DEPLOYKIT_STICKY_SESSIONS": "1", "DEPLOYKIT_HTTP_PORT": str(port)}
    site = stack.workdir / "sticky.conf"
    text = render(env, "nginx", site)
    assert "hash $remote_addr consistent;" in text
    nginx = Nginx(stack.workdir / "nginx-sticky", site, port)
    try:
        nginx.start()
        yield nginx
    finally:
        nginx.stop()


def pids_seen(address: tuple[str, int] | str, requests: int = 12) -> list[int]:
    return [http_get(address, "/whoami/").json()["pid"] for _ in range(requests)]


def test_upstream_spreads_requests_over_both_hosts(stack: Stack) -> None:
    instance_pids = {s.proc.pid for s in stack.servers if s.proc}
    seen = pids_seen(stack.address)
    print(f"round robin: instance pids {sorted(instance_pids)}, requests served by {seen}")
    assert set(seen) == instance_pids
    assert http_get(stack.address, "/").status == 200


def test_sticky_upstream_keeps_a_client_on_one_host(stack: Stack, sticky: Nginx) -> None:
    seen = pids_seen(("127.0.0.1", sticky.port))
    print(f"sticky (hash $remote_addr consistent): requests served by {seen}")
    assert len(set(seen)) == 1


def test_message_crosses_instances(stack: Stack) -> None:
    instance_of = {s.proc.pid: s.name for s in stack.servers if s.proc}

    async def run() -> list[str]:
        a, b = await clients_on_distinct_pids(stack.address, "/ws/chat/cross/")
        try:
            await a.send("from one host")
            await b.send("from the other host")
            await asyncio.gather(
                a.expect(["from one host", "from the other host"]), b.expect(["from one host", "from the other host"])
            )
            return [instance_of[a.pid], instance_of[b.pid]]
        finally:
            await a.close()
            await b.close()

    hosts = asyncio.run(run())
    print(f"clients on {hosts} exchanged messages through shared Redis")
    assert sorted(hosts) == ["host0", "host1"]


def test_forwarded_headers_trusted_from_loopback_proxy_only(stack: Stack) -> None:
    """On TCP the servers trust X-Forwarded-* from 127.0.0.1 (nginx), which overwrites what clients send."""
    seen = http_get(stack.address, "/whoami/", {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}).json()
    print(f"whoami through nginx with spoofed headers: {seen}")
    assert (seen["remote_addr"], seen["scheme"]) == ("127.0.0.1", "http")
