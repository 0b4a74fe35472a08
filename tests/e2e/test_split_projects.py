"""Split serving (issue 15) on the real-shaped projects of tests/projects/, behind real nginx and real Redis.

Each stack copies a project to a temp dir, starts ``manage.py runasgi --role http`` (the WSGI server)
and ``--role websocket`` (the ASGI server) with ``--wsgi-server`` on the command line (these projects set
no DEPLOYKIT), and nginx runs the site ``deployconfig nginx --check`` rendered from the same flags.

- envsettings (settings package read from the environment, production: SECURE_PROXY_SSL_HEADER, no
  WSGI_APPLICATION, no wsgi.py) with granian WSGI + uvicorn ASGI on loopback TCP: a peer on 127.0.0.2
  can reach both servers directly, outside their trust list (127.0.0.1, ::1);
- tutorial (after runasgi's W009 hint, as tests/e2e/test_projects.py fixes its layer) with gunicorn WSGI +
  granian ASGI on unix sockets (RUNTIME_DIRECTORY in the test's folder).

Asserted on each: HTTP (the project's page and /whoami/) answered by WSGI processes, WebSockets by ASGI
ones, a chat message crossing two ASGI processes, forged X-Forwarded-For/-Proto from 127.0.0.2 ignored
on both sides (through nginx; on TCP also straight to each server), and a graceful restart of one side
leaving the other side's traffic untouched.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.test_projects import (
    ENVSETTINGS,
    STATIC_MARKER,
    Project,
    copy_project,
    listen_on,
    message_crosses_two_pids,
)
from tests.e2e.test_split import descendants
from tests.e2e.ws import clients_on_distinct_pids
from tests.procs import (
    Address,
    Nginx,
    Proc,
    RedisServer,
    free_port,
    http_get,
    project_manage,
    settings_variant,
    short_tmpdir,
    start_or_refuse,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-split-projects")]

#: A loopback peer outside every trust list (the proxy connects from 127.0.0.1).
STRANGER = "127.0.0.2"
FORGED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
#: Short, so that the restarts fit the suite's budget; every server's own shutdown finishes well inside it.
GRACEFUL_TIMEOUT = 5
TUTORIAL_SPLIT = Project("tutorial", "/chat/", "staticfiles", hinted=True)


@dataclass(frozen=True)
class Variant:
    project: Project
    wsgi: str
    asgi: str
    tcp: bool

    def __str__(self) -> str:
        return f"{self.project.name}-{self.wsgi}-{self.asgi}-{'tcp' if self.tcp else 'unix'}"


VARIANTS = [
    Variant(ENVSETTINGS, "granian", "uvicorn", tcp=True),
    Variant(TUTORIAL_SPLIT, "gunicorn", "granian", tcp=False),
]


@dataclass
class Side:
    role: str
    args: list[str]
    address: Address
    probe: str
    proc: Proc | None = None


@dataclass
class SplitStack:
    variant: Variant
    workdir: Path
    project_dir: Path
    env: dict[str, str]
    sides: dict[str, Side] = field(default_factory=dict)
    nginx: Nginx | None = None
    site_conf: str = ""

    @property
    def address(self) -> tuple[str, int]:
        assert self.nginx is not None
        return ("127.0.0.1", self.nginx.port)

    def start(self, side: Side) -> None:
        outcome = start_or_refuse(
            side.role, self.project_dir, self.env, side.args, side.address, self.workdir, side.probe, timeout=60
        )
        assert not outcome.refused, f"runasgi {' '.join(side.args)} exited {outcome.returncode}:\n{outcome.output}"
        side.proc = outcome.proc

    def restart(self, role: str) -> None:
        side = self.sides[role]
        assert side.proc is not None
        stopped = side.proc.stop(signal.SIGTERM, GRACEFUL_TIMEOUT + 10)
        print(f"{role}: SIGTERM -> exit {stopped.returncode} in {stopped.seconds:.1f}s (killed: {stopped.killed})")
        self.start(side)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    workdir = short_tmpdir("splitredis")
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module", params=VARIANTS, ids=str)
def stack(request: pytest.FixtureRequest, redis: RedisServer) -> Iterator[SplitStack]:
    variant: Variant = request.param
    workdir = short_tmpdir(f"sp-{variant.project.name[:4]}")
    project_dir, env = copy_project(variant.project, workdir, redis)
    flags = ["--wsgi-server", variant.wsgi, "--server", variant.asgi, "--workers", "2"]
    if variant.tcp:
        port = free_port()
        flags += ["--bind", f"127.0.0.1:{port}"]
        addresses: dict[str, Address] = {"http": ("127.0.0.1", port + 1), "websocket": ("127.0.0.1", port)}
    else:
        # The hinted tutorial plus where its sockets go (default /run/mysite): the test's own folder.
        settings_variant(
            project_dir / "mysite",
            "settings_split",
            "mysite.settings_hinted",
            f"DEPLOYKIT = {{'RUNTIME_DIRECTORY': {str(workdir / 'run')!r}}}",
        )
        env["DJANGO_SETTINGS_MODULE"] = "mysite.settings_split"
        addresses = {"http": f"{workdir}/run-http/mysite-http.sock", "websocket": f"{workdir}/run/mysite.sock"}
    env["DEPLOYKIT_GRACEFUL_TIMEOUT"] = str(GRACEFUL_TIMEOUT)
    stack = SplitStack(variant, workdir, project_dir, env)
    try:
        for role, probe in (("http", "/whoami/"), ("websocket", "/whoami/")):
            side = Side(role, ["--role", role, *flags], addresses[role], probe)
            stack.sides[role] = side
            stack.start(side)
        done = project_manage(project_dir, env, "deployconfig", "nginx", "--check", *flags)
        assert done.returncode == 0, done.stderr
        port = free_port()
        stack.site_conf = listen_on(done.stdout, port)
        (workdir / "site.conf").write_text(stack.site_conf)
        stack.nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
        stack.nginx.start()
        yield stack
    finally:
        for side in stack.sides.values():
            if side.proc is not None:
                stopped = side.proc.stop(timeout=GRACEFUL_TIMEOUT + 10)
                print(f"{variant}: {side.role} stopped in {stopped.seconds:.1f}s (killed: {stopped.killed})")
        if stack.nginx is not None:
            stack.nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def pid_of(stack: SplitStack, role: str) -> int:
    proc = stack.sides[role].proc
    assert proc is not None
    return proc.pid


def whoami(address: Address, *, source: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = http_get(address, "/whoami/", headers, source=source)
    assert response.status == 200, response.body[:500]
    seen: dict[str, Any] = response.json()
    return seen


async def hello(address: tuple[str, int], path: str, *, source: str, headers: dict[str, str]) -> dict[str, Any]:
    """The hello of a chat WebSocket opened from ``source`` with ``headers``: what the consumer believes."""
    sock = socket.create_connection(address, timeout=10, source_address=(source, 0))
    origin = {"Origin": f"http://127.0.0.1:{address[1]}"}
    url = f"ws://127.0.0.1:{address[1]}{path}"
    async with connect(url, sock=sock, additional_headers={**origin, **headers}, open_timeout=10) as conn:
        said: dict[str, Any] = json.loads(await asyncio.wait_for(conn.recv(), 10))
    assert said["type"] == "hello", said
    return said


def test_the_site_chooses_the_upstream_by_the_handshake(stack: SplitStack) -> None:
    assert "map $http_upgrade" in stack.site_conf, stack.site_conf


def test_http_is_answered_by_the_wsgi_server_websockets_by_the_asgi_server(stack: SplitStack) -> None:
    page = http_get(stack.address, stack.variant.project.page)
    assert page.status == 200, page.body[:500]
    static = http_get(stack.address, f"/static/{STATIC_MARKER}")
    assert static.status == 200

    async def ws_pids() -> list[int]:
        clients = await clients_on_distinct_pids(stack.address, stack.variant.project.ws_path, timeout=15)
        for c in clients:
            await c.close()
        return [c.pid for c in clients]

    http_pids = {whoami(stack.address)["pid"] for _ in range(10)}
    socket_pids = asyncio.run(ws_pids())
    print(f"{stack.variant}: HTTP pids {sorted(http_pids)}, WebSocket pids {sorted(socket_pids)}")
    assert http_pids <= descendants(pid_of(stack, "http"))
    assert set(socket_pids) <= descendants(pid_of(stack, "websocket"))
    assert not http_pids & set(socket_pids)


def test_a_chat_message_crosses_two_asgi_processes(stack: SplitStack) -> None:
    pids = message_crosses_two_pids(stack.address, stack.variant.project.ws_path)
    print(f"{stack.variant}: a message crossed from ASGI pid {pids[0]} to {pids[1]}")


def test_forged_headers_through_the_proxy_are_ignored_on_both_sides(stack: SplitStack) -> None:
    """A client on 127.0.0.2 sends forged headers to nginx: both servers see 127.0.0.2 over plain HTTP."""
    seen = whoami(stack.address, source=STRANGER, headers=FORGED)
    said = asyncio.run(hello(stack.address, "/ws/chat/spoof/", source=STRANGER, headers=FORGED))
    print(f"{stack.variant} through nginx: HTTP side {seen}; WebSocket side {said}")
    assert (seen["remote_addr"], seen["is_secure"]) == (STRANGER, False)
    assert (said["client"], said["scheme"]) == (STRANGER, "ws")


def test_forged_headers_straight_to_each_server_are_ignored(stack: SplitStack) -> None:
    """On TCP a stranger reaches the servers without the proxy: neither believes it (not even Django's
    SECURE_PROXY_SSL_HEADER, which envsettings' production settings set)."""
    if not stack.variant.tcp:
        pytest.skip("unix sockets: only the proxy reaches the servers (the folder is 0750)")
    http, websocket = stack.sides["http"].address, stack.sides["websocket"].address
    assert isinstance(http, tuple) and isinstance(websocket, tuple)
    seen = whoami(http, source=STRANGER, headers=FORGED)
    said = asyncio.run(hello(websocket, "/ws/chat/spoof/", source=STRANGER, headers=FORGED))
    print(f"{stack.variant} straight: WSGI server {seen}; ASGI server {said}")
    assert (seen["remote_addr"], seen["is_secure"]) == (STRANGER, False)
    assert (said["client"], said["scheme"]) == (STRANGER, "ws")


def test_restarting_the_http_side_leaves_open_websockets_untouched(stack: SplitStack) -> None:
    async def run() -> tuple[int, int]:
        a, b = await clients_on_distinct_pids(stack.address, stack.variant.project.ws_path, timeout=15)
        try:
            before = whoami(stack.address)["pid"]
            await asyncio.to_thread(stack.restart, "http")
            after = whoami(stack.address)["pid"]
            # The same connections, still open, still carrying messages across processes.
            await a.send("after the http restart")
            await b.expect(["after the http restart"])
            return before, after
        finally:
            await a.close()
            await b.close()

    before, after = asyncio.run(run())
    print(f"{stack.variant}: HTTP pid {before} -> {after}; both WebSockets stayed open")
    assert before != after


def test_restarting_the_websocket_side_leaves_http_answering(stack: SplitStack) -> None:
    statuses: list[int] = []
    done = False

    def poll() -> None:
        while not done:
            statuses.append(http_get(stack.address, stack.variant.project.page).status)
            time.sleep(0.02)

    async def run() -> None:
        nonlocal done
        poller = asyncio.create_task(asyncio.to_thread(poll))
        try:
            await asyncio.to_thread(stack.restart, "websocket")
        finally:
            done = True
            await poller

    asyncio.run(run())
    print(f"{stack.variant}: during the WebSocket side's restart {len(statuses)} requests, {sorted(set(statuses))}")
    assert statuses and set(statuses) == {200}
    # And the restarted side serves again.
    wait_until(
        lambda: asyncio.run(hello(stack.address, "/ws/chat/back/", source="127.0.0.1", headers={})),
        20,
        "a WebSocket after the restart",
    )
