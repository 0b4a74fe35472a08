"""Split serving (issue 15) end to end: nginx -> WSGI (HTTP) + ASGI (WebSockets), Redis channel layer.

Both servers start with ``manage.py runasgi --role http`` / ``--role websocket`` (the argv the units
contain), nginx runs the file ``deployconfig nginx --check`` wrote, which chooses the upstream from the
handshake itself (``map $http_upgrade``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.e2e.conftest import GRACEFUL_TIMEOUT, STATIC_MARKER, STATIC_MARKER_TEXT, Server, Stack, render
from tests.e2e.ws import clients_on_distinct_pids
from tests.procs import Nginx, RedisServer, free_port, http_get, short_tmpdir, stack_env, start_server, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-split")]

ROOM = "/ws/chat/split/"
FORGED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (the server's workers)."""
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


@pytest.fixture(scope="module", params=["granian", "gunicorn"])
def stack(request: pytest.FixtureRequest, static_root: Path) -> Iterator[Stack]:
    wsgi: str = request.param
    workdir = short_tmpdir(f"split-{wsgi[:4]}")
    redis = RedisServer(workdir)
    port = free_port()
    env = stack_env(
        workdir,
        redis.url,
        static_root,
        DEPLOYKIT_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT),
        DEPLOYKIT_LISTEN_ADDRESS="127.0.0.1",
        DEPLOYKIT_HTTP_PORT=str(port),
        DEPLOYKIT_WSGI_SERVER=wsgi,
        DEPLOYKIT_WSGI_WORKERS="2",
        DEPLOYKIT_METRICS_PATH="/-/metrics",
    )
    # The plan's own socket for the WSGI side: RUNTIME_DIRECTORY-http/NAME-http.sock.
    wsgi_socket = f"{workdir}-http/testproject-http.sock"
    flags = ["--server", "uvicorn", "--workers", "2"]
    servers = [
        Server("http", ["--role", "http", *flags], wsgi_socket),
        Server("websocket", ["--role", "websocket", *flags], str(workdir / "app.sock")),
    ]
    stack = Stack(workdir, env, redis, servers)
    try:
        redis.start()
        for server, probe in zip(servers, ("/whoami/", "/-/ready"), strict=True):
            server.proc = start_server(server.name, env, server.args, workdir)
            stack.startup_seconds.append(wait_ready(server.proc, server.address, probe))
        stack.site_conf = render(env, "nginx", workdir / "site.conf", *flags)
        stack.nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
        stack.nginx.start()
        print(f"\n{wsgi}: {servers[0].proc.log().splitlines()[-1] if servers[0].proc else ''}")
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(f"{workdir}-http", ignore_errors=True)


def http_pid(stack: Stack) -> int:
    response = http_get(stack.address, "/whoami/")
    assert response.status == 200, response.body
    pid: int = response.json()["pid"]
    return pid


def test_the_site_chooses_the_upstream_by_the_handshake(stack: Stack) -> None:
    assert "map $http_upgrade $testproject_upstream" in stack.site_conf
    assert "proxy_pass http://$testproject_upstream;" in stack.site_conf


def test_http_is_answered_by_the_wsgi_server_websockets_by_the_asgi_server(stack: Stack) -> None:
    http, websocket = (s.proc for s in stack.servers)
    assert http is not None and websocket is not None

    async def ws_pids() -> list[int]:
        clients = await clients_on_distinct_pids(stack.address, ROOM)
        for c in clients:
            await c.close()
        return [c.pid for c in clients]

    pids = {http_pid(stack) for _ in range(20)}
    socket_pids = asyncio.run(ws_pids())
    print(f"/whoami/ pids {sorted(pids)} under WSGI pid {http.pid}; WebSocket pids {socket_pids} under {websocket.pid}")
    assert pids <= descendants(http.pid)
    assert set(socket_pids) <= descendants(websocket.pid)
    assert not pids & set(socket_pids)


def test_static_and_readiness_through_the_split_site(stack: Stack) -> None:
    static = http_get(stack.address, f"/static/{STATIC_MARKER}")
    assert (static.status, static.body.decode()) == (200, STATIC_MARKER_TEXT)
    ready = http_get(stack.address, "/-/ready")
    assert (ready.status, ready.json()) == (200, {"status": "ok"})


def test_metrics_count_the_requests_the_wsgi_server_answers(stack: Stack) -> None:
    """Issue 17 item 7: the ASGI server answers METRICS_PATH and sums the WSGI server's counter files too."""

    def served_2xx() -> float:
        response = http_get(stack.address, "/-/metrics")
        assert response.status == 200, response.body[:200]
        text = response.body.decode()
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith('deploykit_http_requests_total{method="GET",status="2xx"}')
        )

    before = served_2xx()
    pids = {http_pid(stack) for _ in range(12)}
    after = served_2xx()
    print(f"/whoami/ from WSGI pids {sorted(pids)}: GET 2xx {before} -> {after}")
    assert after - before == 12
    assert list(Path(f"{stack.workdir}-http/metrics").glob("*.counts"))


def test_the_wsgi_server_answers_the_readiness_path_itself(stack: Stack) -> None:
    """What a probe aimed at the HTTP service gets (a Kubernetes Deployment of its own): the real check."""
    ready = http_get(stack.servers[0].address, "/-/ready")
    assert (ready.status, ready.json()) == (200, {"status": "ok"}), ready.body


def test_a_chat_message_crosses_two_asgi_processes(stack: Stack) -> None:
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
    print(f"chat across ASGI pids {pids}")
    assert pids[0] != pids[1]


def test_spoofed_headers_are_ignored_on_both_sides(stack: Stack) -> None:
    seen = http_get(stack.address, "/whoami/", FORGED).json()
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == ("127.0.0.1", "http", False)

    async def hello() -> dict[str, object]:
        url = f"ws://127.0.0.1:{stack.address[1]}{ROOM}"
        headers = {"Origin": f"http://127.0.0.1:{stack.address[1]}", **FORGED}
        async with connect(url, additional_headers=headers, open_timeout=10) as conn:
            data: dict[str, object] = json.loads(await asyncio.wait_for(conn.recv(), 10))
            return data

    said = asyncio.run(hello())
    print(f"HTTP side: {seen}; WebSocket side: client {said['client']}, scheme {said['scheme']}")
    assert (said["client"], said["scheme"]) == (["127.0.0.1", 0], "ws")


def restart(stack: Stack, server: Server, probe: str) -> None:
    assert server.proc is not None
    stopped = server.proc.stop(signal.SIGTERM, GRACEFUL_TIMEOUT + 10)
    print(f"{server.name}: SIGTERM -> exit {stopped.returncode}")
    server.proc = start_server(server.name, stack.env, server.args, stack.workdir)
    wait_ready(server.proc, server.address, probe)


def test_restarting_the_http_side_leaves_open_websockets_untouched(stack: Stack) -> None:
    http = stack.servers[0]

    async def run() -> tuple[int, int]:
        a, b = await clients_on_distinct_pids(stack.address, ROOM)
        try:
            before = http_pid(stack)
            await asyncio.to_thread(restart, stack, http, "/whoami/")
            after = http_pid(stack)
            # The same connections, still open, still carrying messages across processes.
            await a.send("after the http restart")
            await b.expect(["after the http restart"])
            return before, after
        finally:
            await a.close()
            await b.close()

    before, after = asyncio.run(run())
    print(f"HTTP pid {before} -> {after}; both WebSockets stayed open")
    assert before != after


def test_restarting_the_websocket_side_leaves_http_answering(stack: Stack) -> None:
    websocket = stack.servers[1]
    http = stack.servers[0]
    assert http.proc is not None
    statuses: list[int] = []
    pids: set[int] = set()
    done = False

    def poll() -> None:
        while not done:
            response = http_get(stack.address, "/whoami/")
            statuses.append(response.status)
            if response.status == 200:
                pids.add(response.json()["pid"])
            time.sleep(0.02)

    async def run() -> None:
        nonlocal done
        poller = asyncio.create_task(asyncio.to_thread(poll))
        try:
            await asyncio.to_thread(restart, stack, websocket, "/-/ready")
        finally:
            done = True
            await poller

    asyncio.run(run())
    print(f"during the WebSocket side's restart: {len(statuses)} requests, statuses {sorted(set(statuses))}")
    assert statuses and set(statuses) == {200}
    assert pids <= descendants(http.proc.pid)
