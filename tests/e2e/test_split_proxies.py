"""Split serving (issue 15) through real nginx, Apache and Caddy: the handshake itself chooses the server.

First with two stand-in apps: the "ASGI" one on the plan's unix socket answers HTTP with ``asgi`` and
accepts WebSockets; the "WSGI" one on WSGI_BIND answers HTTP with ``wsgi``. A plain request must reach
the WSGI one, a WebSocket upgrade the ASGI one, with every proxy.

Then with the real servers (``runasgi --role http`` / ``--role websocket``, testproject.production, Redis)
on loopback TCP: every ASGI server the plan allows on the WebSocket side, both WSGI servers, each WSGI
server behind each proxy, in five stacks (about 45 s on a loaded 2-core machine); a client on 127.0.0.2
forging X-Forwarded-For/-Proto is seen as itself, over plain HTTP, on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from websockets.asyncio.client import connect

from deploykit.plan import Plan
from tests.e2e import test_audit_proxies as audit
from tests.e2e.test_audit_proxies import METRICS, NAME, STRANGER, answer, make_plan, request, stack
from tests.e2e.test_split import descendants
from tests.procs import free_port, http_get, running_redis, short_tmpdir, stack_env, start_server, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-audit-proxies")]

#: The audit's folder: static and media files the proxies may read, the stand-in app's socket.
workdir = audit.workdir

WSGI_STANDIN = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"wsgi " + scope["path"].encode()})
"""

ASGI_STANDIN = """\
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "asgi websocket " + scope["path"]})
        await send({"type": "websocket.close"})
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"asgi " + scope["path"].encode()})
"""


@contextlib.contextmanager
def split_stack(root: Path, proxy: str, **extra: Any) -> Iterator[Plan]:
    (root / "backend.py").write_text(ASGI_STANDIN)
    (root / "wsgi_standin.py").write_text(WSGI_STANDIN)
    wsgi_port = free_port()
    with override_settings(WSGI_APPLICATION="testproject.wsgi.application"):
        plan = make_plan(root, proxy, WSGI_SERVER="gunicorn", WSGI_BIND=f"127.0.0.1:{wsgi_port}", **extra)
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(root), "--port", str(wsgi_port), "wsgi_standin:app"]
    with _backend_tcp(argv, root, wsgi_port), stack(root, plan):
        yield plan


@contextlib.contextmanager
def _backend_tcp(argv: list[str], root: Path, port: int) -> Iterator[None]:
    from tests.procs import Proc, answers, wait_until

    proc = Proc("wsgi-standin", argv, log_dir=root)
    try:
        wait_until(lambda: proc.alive() and answers(("127.0.0.1", port), "/"), 20, "the WSGI stand-in")
        yield
    finally:
        proc.stop(timeout=10)


async def websocket_says(port: int, path: str) -> str:
    # The site's name in the URL (its Host header), the connection to loopback.
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    async with connect(f"ws://{NAME}:{port}{path}", sock=sock, open_timeout=10) as conn:
        return str(await asyncio.wait_for(conn.recv(), 10))


@pytest.mark.parametrize("proxy", ["nginx", "apache", "caddy"])
def test_the_handshake_chooses_the_server(workdir: Path, proxy: str) -> None:
    with split_stack(workdir, proxy) as plan:
        port = plan.site.http_port
        status, _, body = request(port, "GET", "/chat/lobby/")
        said = asyncio.run(websocket_says(port, "/ws/chat/lobby/"))
    print(f"{proxy}: GET -> {status} {body!r}; WebSocket -> {said!r}")
    assert (status, body) == (200, b"wsgi /chat/lobby/")
    assert said == "asgi websocket /ws/chat/lobby/"


# -- the real servers behind each proxy ------------------------------------------------------------------------

#: (ASGI server on the WebSocket side, WSGI server, proxy). Every ASGI server the plan allows appears once;
#: every (WSGI server, proxy) pair once (with tests/e2e/test_split.py's granian/gunicorn behind nginx on unix
#: sockets): five stacks instead of the 5 x 2 x 3 product.
REAL_STACKS = [
    ("daphne", "gunicorn", "apache"),
    ("granian", "gunicorn", "nginx"),
    ("hypercorn", "granian", "caddy"),
    ("gunicorn", "granian", "apache"),
    ("uvicorn", "gunicorn", "caddy"),
]
FORGED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    root = short_tmpdir("splitproxyredis")
    try:
        with running_redis(root) as redis:
            yield redis.url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def real_servers(root: Path, asgi: str, wsgi: str, plan: Plan, redis_url: str) -> Iterator[dict[str, int]]:
    """``runasgi --role http`` and ``--role websocket`` (testproject.production) on the plan's TCP ports.

    Their pids by role.
    """
    (asgi_bind,) = plan.server.addresses
    assert plan.wsgi is not None
    (wsgi_bind,) = plan.wsgi.addresses
    env = stack_env(
        root,
        redis_url,
        root / "static",
        ALLOWED_HOSTS=f"{NAME},127.0.0.1",
        DEPLOYKIT_SERVER=asgi,
        DEPLOYKIT_WORKERS="1",
        DEPLOYKIT_BIND=str(asgi_bind),
        DEPLOYKIT_WSGI_SERVER=wsgi,
        DEPLOYKIT_WSGI_WORKERS="1",
        DEPLOYKIT_WSGI_BIND=str(wsgi_bind),
        DEPLOYKIT_GRACEFUL_TIMEOUT="3",
    )
    del env["DEPLOYKIT_SOCKET"]  # stack_env's unix socket: these servers listen on TCP
    procs = {}
    try:
        for role, bind in (("http", wsgi_bind), ("websocket", asgi_bind)):
            procs[role] = start_server(f"{role}-{wsgi if role == 'http' else asgi}", env, ["--role", role], root)
            wait_ready(procs[role], ("127.0.0.1", bind.port), "/whoami/")
        yield {role: proc.pid for role, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stop(timeout=10)


async def chat_hello(port: int, *, source: str, headers: dict[str, str]) -> dict[str, object]:
    """testproject's chat hello (pid, client, scheme) for a WebSocket opened through the proxy from ``source``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    origin = {"Origin": f"http://{NAME}:{port}"}
    async with connect(
        f"ws://{NAME}:{port}/ws/chat/matrix/", sock=sock, additional_headers={**origin, **headers}, open_timeout=10
    ) as conn:
        said: dict[str, object] = json.loads(await asyncio.wait_for(conn.recv(), 10))
    return said


@pytest.mark.parametrize(("asgi", "wsgi", "proxy"), REAL_STACKS)
def test_real_servers_behind_each_proxy(workdir: Path, redis_url: str, asgi: str, wsgi: str, proxy: str) -> None:
    """HTTP reaches the WSGI server, a WebSocket the ASGI one; a stranger's forged headers fool neither."""
    with override_settings(WSGI_APPLICATION="testproject.wsgi.application"):
        plan = make_plan(
            workdir,
            proxy,
            SERVER=asgi,
            WORKERS=1,
            SOCKET=None,  # make_plan's unix socket: these servers listen on TCP (Apache's children reach it)
            BIND=f"127.0.0.1:{free_port()}",
            WSGI_SERVER=wsgi,
            WSGI_BIND=f"127.0.0.1:{free_port()}",
        )
    serving = audit.nginx_serving if proxy == "nginx" else audit.SERVING[proxy]
    port = plan.site.http_port
    with real_servers(workdir, asgi, wsgi, plan, redis_url) as pids, serving(workdir, plan):
        status, _, body = request(port, "GET", "/whoami/", source=STRANGER)
        # X-Forwarded-* as a stranger forges them, through the proxy.
        forged = http_get(("127.0.0.1", port), "/whoami/", {"Host": NAME, **FORGED}, source=STRANGER).json()
        said = asyncio.run(chat_hello(port, source=STRANGER, headers=FORGED))
        family = {role: descendants(pid) for role, pid in pids.items()}
    seen = json.loads(body)
    print(f"{asgi} + {wsgi} behind {proxy}: HTTP {status} {seen}; forged {forged}; WebSocket {said}")
    assert status == 200
    assert seen["pid"] in family["http"]
    assert said["pid"] in family["websocket"]
    assert (forged["remote_addr"], forged["scheme"], forged["is_secure"]) == (STRANGER, "http", False)
    assert (said["client"], said["scheme"]) == ([STRANGER, 0], "ws")


@pytest.mark.parametrize("proxy", ["nginx", "apache", "caddy"])
def test_metrics_go_to_the_asgi_server(workdir: Path, proxy: str) -> None:
    """Issue 17 item 7: the ASGI server answers METRICS_PATH (the WSGI one counts nothing), by name and by address."""
    with split_stack(workdir, proxy, METRICS_PATH=METRICS) as plan:
        port = plan.site.http_port
        by_name = answer(port, METRICS)
        by_address = answer(port, METRICS, host="127.0.0.1")
        stranger = answer(port, METRICS, source=STRANGER)
        page = answer(port, "/chat/lobby/")
    print(f"{proxy}: by name {by_name}; by address {by_address}; stranger {stranger[0]}; page {page}")
    assert by_name == by_address == (200, f"asgi {METRICS}".encode())
    assert stranger[0] == 403
    assert page == (200, b"wsgi /chat/lobby/")
