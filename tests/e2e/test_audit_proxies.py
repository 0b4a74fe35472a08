"""What a stranger reaches through the generated nginx, Apache and Caddy (issue 14 items 1, 2, 3, 5).

Real proxies serve the rendered files in front of a stand-in app (a few lines
of ASGI under uvicorn on the plan's unix socket) that answers every path and,
like Django's SecurityMiddleware, sends its own nosniff / Referrer-Policy. A
request from 127.0.0.2 is a stranger: loopback to the kernel, but not the
127.0.0.1 / ::1 the proxies trust for the readiness path.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit.plan import Plan, build_plan
from tests.e2e.test_catch_all import SERVING, nginx_serving
from tests.procs import Proc, free_port, short_tmpdir, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-audit-proxies")]

NAME = "app.example"
READY = "/-/ready"
METRICS = "/-/metrics"
STRANGER = "127.0.0.2"
PROXIES = ["nginx", "apache", "caddy"]

#: The stand-in app: its own security headers (as Django sends them) and the method and path it saw.
BACKEND = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"app {scope['method']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/plain"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = short_tmpdir("audit")
    # Apache's children run as another user: they read the files and reach the socket.
    path.chmod(0o755)
    static, media = path / "static", path / "media"
    (static / ".hidden").mkdir(parents=True)
    (static / ".env.0123456789ab.txt").write_text("SECRET_KEY=static-dotfile\n")
    (static / ".hidden" / "x.0123456789ab.txt").write_text("hidden-dir-secret\n")
    (static / "app.0123456789ab.css").write_text("body{}\n")
    media.mkdir()
    (media / "evil.html").write_text("<script>alert(document.cookie)</script>\n")
    (media / "evil.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n')
    (media / "ok.txt").write_text("plain upload\n")
    # A name Django's storage accepts; Apache must not read it as configuration.
    (media / ".htaccess").write_text("this is not a directive\n")
    for sub in (path, static, static / ".hidden", media):
        sub.chmod(0o755)
    for file in [*static.rglob("*.*"), *media.iterdir()]:
        file.chmod(0o644)
    (path / "backend.py").write_text(BACKEND)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_plan(workdir: Path, proxy: str, **extra: Any) -> Plan:
    overrides: dict[str, Any] = {
        "PROXY": proxy,
        "SERVER_NAMES": [NAME],
        "LISTEN_ADDRESS": "127.0.0.1",
        "HTTP_PORT": free_port(),
        "HTTPS_PORT": free_port(),
        "SOCKET": str(workdir / "app.sock"),
        "RUNTIME_DIRECTORY": str(workdir),
        "HEALTH_PATH": READY,
        **extra,
    }
    with override_settings(
        STATIC_ROOT=str(workdir / "static"),
        STATIC_URL="/static/",
        MEDIA_ROOT=str(workdir / "media"),
        MEDIA_URL="/media/",
    ):
        return build_plan(overrides)


@contextlib.contextmanager
def stack(workdir: Path, plan: Plan) -> Iterator[None]:
    """The stand-in app on the plan's socket and the plan's proxy in front of it."""
    sock = str(workdir / "app.sock")
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(workdir), "--uds", sock, "backend:app"]
    serving = nginx_serving if plan.site.proxy == "nginx" else SERVING[plan.site.proxy]
    with _backend(argv, workdir, sock), serving(workdir, plan):
        yield


@contextlib.contextmanager
def _backend(argv: list[str], workdir: Path, sock: str) -> Iterator[None]:
    proc = Proc("backend", argv, log_dir=workdir)
    try:
        wait_until(lambda: proc.alive() and Path(sock).exists(), 20, "the stand-in app's socket")
        yield
    finally:
        proc.stop(timeout=10)


def request(
    port: int, method: str, path: str, *, source: str = "127.0.0.1", host: str = NAME
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One HTTP/1.1 request from ``source``: (status, header lines in order, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], resp.read()
    finally:
        conn.close()


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k == name]


@pytest.mark.parametrize("proxy", PROXIES)
def test_readiness_path_is_for_loopback_only(workdir: Path, proxy: str) -> None:
    """Item 1: a stranger gets no answer from the app at HEALTH_PATH; the local probe does."""
    plan = make_plan(workdir, proxy)
    port = plan.site.http_port
    with stack(workdir, plan):
        local = request(port, "GET", READY)
        stranger = request(port, "GET", READY, source=STRANGER)
        stranger_query = request(port, "GET", f"{READY}?x=1", source=STRANGER)
        page = request(port, "GET", "/page", source=STRANGER)
    print(f"{proxy}: local {local[0]} {local[2][:40]!r}; stranger {stranger[0]} {stranger[2][:40]!r}")
    assert (local[0], local[2]) == (200, f"app GET {READY}".encode())
    assert stranger[0] in (403, 404) and not stranger[2].startswith(b"app ")
    assert stranger_query[0] in (403, 404) and not stranger_query[2].startswith(b"app ")
    assert (page[0], page[2]) == (200, b"app GET /page")


@pytest.mark.parametrize("proxy", PROXIES)
def test_metrics_path_is_for_loopback_only(workdir: Path, proxy: str) -> None:
    """Issue 17 item 7: METRICS_PATH is refused to a stranger, even with HEALTH_PUBLIC; the local scraper gets it."""
    plan = make_plan(workdir, proxy, METRICS_PATH=METRICS, HEALTH_PUBLIC=True)
    port = plan.site.http_port
    with stack(workdir, plan):
        local = request(port, "GET", METRICS)
        stranger = request(port, "GET", METRICS, source=STRANGER)
        stranger_query = request(port, "GET", f"{METRICS}?x=1", source=STRANGER)
        ready = request(port, "GET", READY, source=STRANGER)
    print(f"{proxy}: local {local[0]} {local[2][:40]!r}; stranger {stranger[0]} {stranger[2][:40]!r}")
    assert (local[0], local[2]) == (200, f"app GET {METRICS}".encode())
    assert stranger[0] == 403 and not stranger[2].startswith(b"app ")
    assert stranger_query[0] == 403 and not stranger_query[2].startswith(b"app ")
    assert (ready[0], ready[2]) == (200, f"app GET {READY}".encode())


def answer(port: int, path: str, *, source: str = "127.0.0.1", host: str = NAME) -> tuple[int | None, bytes]:
    """(status, body), or (None, b"") when the proxy closed without a response (nginx 444, Caddy's abort)."""
    try:
        status, _, body = request(port, "GET", path, source=source, host=host)
    except (http.client.HTTPException, ConnectionError):
        return None, b""
    return status, body


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_local_scraper_reaches_metrics_by_address(workdir: Path, proxy: str) -> None:
    """Prometheus on this machine scrapes http://127.0.0.1/METRICS_PATH (it cannot send the site's name as
    Host); the catch-all answers that path from loopback only, and still nothing else."""
    plan = make_plan(workdir, proxy, METRICS_PATH=METRICS)
    port = plan.site.http_port
    with stack(workdir, plan):
        local = answer(port, METRICS, host="127.0.0.1")
        stranger = answer(port, METRICS, source=STRANGER, host="127.0.0.1")
        other = answer(port, "/page", host="127.0.0.1")
        ready = answer(port, READY, host="127.0.0.1")
    print(f"{proxy}: local {local}; stranger {stranger}; other {other}; ready {ready}")
    assert local == (200, f"app GET {METRICS}".encode())
    assert not stranger[1].startswith(b"app ") and stranger[0] in (None, 403, 421)
    assert not other[1].startswith(b"app ") and other[0] in (None, 421)
    assert not ready[1].startswith(b"app ")


@pytest.mark.parametrize("proxy", PROXIES)
def test_readiness_path_public_when_asked(workdir: Path, proxy: str) -> None:
    plan = make_plan(workdir, proxy, HEALTH_PUBLIC=True)
    with stack(workdir, plan):
        stranger = request(plan.site.http_port, "GET", READY, source=STRANGER)
    assert (stranger[0], stranger[2]) == (200, f"app GET {READY}".encode())


@pytest.mark.parametrize("proxy", PROXIES)
def test_uploads_never_run_as_active_content(workdir: Path, proxy: str) -> None:
    """Item 2: an uploaded HTML or SVG file is sandboxed: no script runs on the site's origin."""
    plan = make_plan(workdir, proxy)
    with stack(workdir, plan):
        responses = {name: request(plan.site.http_port, "GET", f"/media/{name}") for name in ("evil.html", "evil.svg")}
    for name, (status, headers, body) in responses.items():
        csp = values(headers, "content-security-policy")
        print(f"{proxy} /media/{name}: {status} type={values(headers, 'content-type')} csp={csp}")
        assert status == 200 and b"<script>" in body  # served, as uploaded
        assert len(csp) == 1 and "sandbox" in csp[0].split(";")[0] and "default-src 'none'" in csp[0]
        assert values(headers, "x-content-type-options") == ["nosniff"]


@pytest.mark.parametrize("proxy", PROXIES)
def test_dotfiles_under_static_are_refused(workdir: Path, proxy: str) -> None:
    """Item 3: the hashed-name location does not serve dotfiles."""
    plan = make_plan(workdir, proxy)
    with stack(workdir, plan):
        port = plan.site.http_port
        dotfile = request(port, "GET", "/static/.env.0123456789ab.txt")
        dotdir = request(port, "GET", "/static/.hidden/x.0123456789ab.txt")
        hashed = request(port, "GET", "/static/app.0123456789ab.css")
    print(f"{proxy}: .env.<hash>.txt {dotfile[0]} {dotfile[2][:30]!r}; .hidden/ {dotdir[0]}; hashed {hashed[0]}")
    assert dotfile[0] in (403, 404) and b"static-dotfile" not in dotfile[2]
    assert dotdir[0] in (403, 404) and b"hidden-dir-secret" not in dotdir[2]
    assert hashed[0] == 200 and "immutable" in " ".join(values(hashed[1], "cache-control"))


@pytest.mark.parametrize("proxy", PROXIES)
def test_one_copy_of_each_header_and_no_backend_server_name(workdir: Path, proxy: str) -> None:
    """Item 5: the app's own nosniff/Referrer-Policy are not sent twice; its Server name is not passed on."""
    plan = make_plan(workdir, proxy)
    with stack(workdir, plan):
        status, headers, _ = request(plan.site.http_port, "GET", "/page")
    print(f"{proxy} /page headers: {headers}")
    assert status == 200
    assert values(headers, "x-content-type-options") == ["nosniff"]
    assert values(headers, "referrer-policy") == ["same-origin"]
    assert not any("uvicorn" in v for v in values(headers, "server"))


def test_apache_media_ignores_htaccess_and_binds_the_listen_address(workdir: Path) -> None:
    """Item 5: a .htaccess in MEDIA_ROOT is not configuration; LISTEN_ADDRESS is where Apache listens."""
    plan = make_plan(workdir, "apache")
    port = plan.site.http_port
    with stack(workdir, plan):
        upload = request(port, "GET", "/media/ok.txt")
        listing = request(port, "GET", "/media/")
        try:
            with socket.create_connection(("127.0.0.2", port), timeout=5):
                other_address = "connected"
        except OSError as exc:
            other_address = type(exc).__name__
    print(f"apache /media/ok.txt {upload[0]}; /media/ {listing[0]}; 127.0.0.2:{port}: {other_address}")
    assert (upload[0], upload[2]) == (200, b"plain upload\n")
    assert listing[0] in (403, 404)
    assert other_address == "ConnectionRefusedError"
