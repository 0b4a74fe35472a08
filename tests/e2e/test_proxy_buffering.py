"""nginx buffers the app's responses, except the ones the app streams (issue 14 item 16).

The generated nginx in front of a stand-in ASGI app on the plan's socket. With
``proxy_buffering off`` everywhere, a client that reads nothing kept the app
sending a large response at the client's pace (gixy: a slow reader holds an
upstream connection); with nginx's default buffering the app is done at once
and nginx feeds the client from its buffers. A view that streams sends
``X-Accel-Buffering: no`` and nginx passes each chunk on as it comes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_audit_proxies import NAME, make_plan, stack
from tests.e2e.test_audit_proxies import workdir as workdir

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-audit-proxies")]

BIG = 32 * 1024 * 1024
BACKEND = f"""\
import asyncio, pathlib, time

HERE = pathlib.Path(__file__).parent

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    unbuffered = [(b"x-accel-buffering", b"no")] if scope["query_string"] == b"unbuffered" else []
    if scope["path"] == "/big":
        await send({{"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/octet-stream"), (b"content-length", b"{BIG}"), *unbuffered]}})
        chunk = b"x" * 65536
        for _ in range({BIG} // 65536 - 1):
            await send({{"type": "http.response.body", "body": chunk, "more_body": True}})
        await send({{"type": "http.response.body", "body": chunk}})
        (HERE / "big-done").write_text(str(time.monotonic()))
        return
    headers = [(b"content-type", b"text/event-stream"), *unbuffered]
    await send({{"type": "http.response.start", "status": 200, "headers": headers}})
    # The first event goes out with the head (nginx sends the body bytes read with it at once).
    await send({{"type": "http.response.body", "body": b"data: first\\n\\n", "more_body": True}})
    await asyncio.sleep(1)
    await send({{"type": "http.response.body", "body": b"data: second\\n\\n", "more_body": True}})
    await asyncio.sleep(2)
    await send({{"type": "http.response.body", "body": b"data: last\\n\\n"}})
"""


@pytest.fixture
def app_dir(workdir: Path) -> Iterator[Path]:
    (workdir / "backend.py").write_text(BACKEND)
    yield workdir


def send_request(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode())
    return sock


def second_event_after(port: int, path: str) -> tuple[float, bytes]:
    """Seconds until the second event of ``path`` arrives (the app sends it after 1 s), and the response head."""
    sock = send_request(port, path)
    start = time.monotonic()
    received = b""
    try:
        while b"data: second" not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        return time.monotonic() - start, received.split(b"\r\n\r\n", 1)[0]
    finally:
        sock.close()


def app_done_while_the_client_reads_nothing(app_dir: Path, port: int, path: str) -> bool:
    (app_dir / "big-done").unlink(missing_ok=True)
    sock = send_request(port, path)
    try:
        deadline = time.monotonic() + 5
        while not (done := (app_dir / "big-done").exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return done
    finally:
        sock.close()


def test_a_client_that_reads_nothing_does_not_hold_the_app(app_dir: Path) -> None:
    """Buffered, the app sends 32 MiB at once; a response marked unbuffered goes at the client's pace."""
    plan = make_plan(app_dir, "nginx")
    with stack(app_dir, plan):
        buffered = app_done_while_the_client_reads_nothing(app_dir, plan.site.http_port, "/big")
        unbuffered = app_done_while_the_client_reads_nothing(app_dir, plan.site.http_port, "/big?unbuffered")
    print(f"app done with 32 MiB while the client read nothing: {buffered}; with X-Accel-Buffering: no: {unbuffered}")
    assert buffered
    assert not unbuffered


def test_streamed_events_go_through_as_they_come(app_dir: Path) -> None:
    plan = make_plan(app_dir, "nginx")
    with stack(app_dir, plan):
        unbuffered, head = second_event_after(plan.site.http_port, "/events?unbuffered")
        buffered, _ = second_event_after(plan.site.http_port, "/events")
    print(f"second event after {unbuffered:.2f}s with X-Accel-Buffering: no, {buffered:.2f}s without")
    # Either way as the app sent it, 1 s in (the last event comes 2 s later): nginx passes on
    # what it has read while buffering too; the header makes it read no faster than the client.
    assert 0.9 < unbuffered < 2.0
    assert 0.9 < buffered < 2.0
    assert b"x-accel-buffering" not in head.lower()  # nginx keeps the header to itself
