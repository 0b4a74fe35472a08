"""nginx tries a request again when a stopping server closed its connection unanswered (issue 16).

A server that gets SIGTERM closes the connections it had accepted but not yet read (uvicorn's shutdown, daphne
#177, a recycled worker): the request is lost although the socket is still there for the next server. The nginx
site deploykit writes lists a lone upstream server twice, so that nginx passes such a request on (its
``proxy_next_upstream error``) to the same socket. Here a stand-in server on the plan's unix socket closes the
first connection after reading the request and answers the second: real nginx, the rendered site, no app.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploykit.plan import build_plan
from deploykit.targets.nginx import Nginx as NginxTarget
from tests.procs import Nginx, free_port, short_tmpdir

pytestmark = [pytest.mark.e2e]

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class ClosesTheFirst:
    """A unix-socket server that reads each request, closes the first N connections unanswered, answers the rest."""

    def __init__(self, path: str, unanswered: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(16)
        self.unanswered = unanswered
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.split(b"\r\n", 1)[0])
                if len(self.requests) > self.unanswered:
                    conn.sendall(ANSWER)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def site() -> Iterator[tuple[Path, int]]:
    workdir = short_tmpdir("retry")
    port = free_port()
    try:
        plan = build_plan(
            {
                "LISTEN_ADDRESS": "127.0.0.1",
                "HTTP_PORT": port,
                "SOCKET": str(workdir / "app.sock"),
                "RUNTIME_DIRECTORY": str(workdir),
            }
        )
        [rendered] = [f for f in NginxTarget(plan).files() if f.name.endswith(".conf")]
        (workdir / "site.conf").write_text(rendered.content)
        yield workdir, port
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def through_nginx(site: tuple[Path, int], request: bytes) -> tuple[bytes, list[bytes]]:
    """``request`` to the rendered site, whose server closes the first connection unanswered: the status line
    the client got, and the request lines the server read."""
    workdir, port = site
    server = ClosesTheFirst(str(workdir / "app.sock"), unanswered=1)
    nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
    nginx.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(request)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
    finally:
        nginx.stop()
        server.close()
    return answer.split(b"\r\n", 1)[0], server.requests


def test_a_get_the_server_closed_unanswered_is_answered(site: tuple[Path, int]) -> None:
    status, requests = through_nginx(site, b"GET /whoami/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    assert status == b"HTTP/1.1 200 OK", (status, requests)
    assert requests == [b"GET /whoami/ HTTP/1.1"] * 2


def test_a_post_is_never_sent_twice(site: tuple[Path, int]) -> None:
    # nginx retries no non-idempotent request (since 1.9.13): a POST the server may have acted on gets the 502.
    status, requests = through_nginx(
        site, b"POST /form/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert status == b"HTTP/1.1 502 Bad Gateway"
    assert requests == [b"POST /form/ HTTP/1.1"]
