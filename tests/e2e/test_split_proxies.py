"""Split serving (issue 15) through real nginx, Apache and Caddy: the handshake itself chooses the server.

Two stand-in apps: the "ASGI" one on the plan's unix socket answers HTTP with ``asgi`` and accepts
WebSockets; the "WSGI" one on WSGI_BIND answers HTTP with ``wsgi``. A plain request must reach the
WSGI one, a WebSocket upgrade the ASGI one, with every proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.procs import free_port

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
