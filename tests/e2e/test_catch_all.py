"""A Host outside the plan never reaches the app, and the HTTPS redirect goes to the site's own name.

Real nginx, Apache and Caddy serving the files deploykit renders (issue 12 item 8,
issue 14 item 4). No app server runs: a plan name is shown to be served by the
site itself with a static file (and the ACME webroot) that only the named site serves.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit import quoting
from deploykit.plan import Plan, build_plan
from deploykit.targets.apache import Apache, check_conf
from deploykit.targets.nginx import Nginx as NginxTarget
from deploykit.targets.tooling import with_standin_certificates
from tests.conftest import require_tool
from tests.procs import Nginx, Proc, free_port, short_tmpdir, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-catch-all")]

NAMES = ["app.example", "www.app.example"]
FOREIGN = "evil.example"
MARKER = "catch-all-marker.txt"
MARKER_TEXT = "served by the named site\n"
TOKEN = "acme-token-123"


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = short_tmpdir("catch")
    # Apache's children run as another user: they must read the static files.
    path.chmod(0o755)
    (path / "static").mkdir()
    (path / "static" / MARKER).write_text(MARKER_TEXT)
    challenge = path / "acme" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / TOKEN).write_text("challenge answer\n")
    for sub in ("static", "acme", "acme/.well-known", "acme/.well-known/acme-challenge"):
        (path / sub).chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_plan(workdir: Path, proxy: str, tls: bool, http_port: int, https_port: int) -> Plan:
    overrides: dict[str, Any] = {
        "PROXY": proxy,
        "SERVER_NAMES": NAMES,
        "LISTEN_ADDRESS": "127.0.0.1",
        "HTTP_PORT": http_port,
        "HTTPS_PORT": https_port,
        # Nothing listens there: what the app would answer is not the question.
        "SOCKET": str(workdir / "app.sock"),
        "RUNTIME_DIRECTORY": str(workdir),
    }
    if tls:
        # Paths that do not exist: with_standin_certificates swaps in a self-signed pair.
        overrides |= {
            "TLS_CERTIFICATE": "/etc/ssl/absent/fullchain.pem",
            "TLS_CERTIFICATE_KEY": "/etc/ssl/absent/privkey.pem",
            "ACME_WEBROOT": str(workdir / "acme"),
        }
    with override_settings(STATIC_ROOT=str(workdir / "static"), STATIC_URL="/static/"):
        return build_plan(overrides)


def exchange(port: int, host: str, path: str = "/", *, sni: str | None = None) -> bytes:
    """Send one HTTP/1.1 request to 127.0.0.1:port (over TLS with ``sni`` when given); every byte until EOF."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock: socket.socket = raw
    try:
        if sni is not None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(raw, server_hostname=sni)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def status_and_location(response: bytes) -> tuple[int, str | None]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    return int(head[0].split()[1]), headers.get("location")


def handshake_error(port: int, sni: str) -> str | None:
    """The TLS error for a handshake with ``sni``, or None when it completes."""
    try:
        exchange(port, sni, sni=sni)
    except ssl.SSLError as exc:
        return str(exc)
    return None


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def started(proc: Proc, port: int) -> None:
    """Wait until ``proc`` listens on ``port``; fail with its log if it exits or never does."""
    try:
        wait_until(lambda: proc.alive() and listening(port), 15, f"{proc.name} on port {port}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proc.log()}") from None


# -- nginx ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def nginx_serving(workdir: Path, plan: Plan) -> Iterator[str]:
    site = workdir / "site.conf"
    text = with_standin_certificates(plan, NginxTarget(plan).render(), workdir, quoting.nginx)
    site.write_text(text)
    nginx = Nginx(workdir / "nginx", site, plan.site.http_port)
    nginx.start()
    try:
        yield text
    finally:
        nginx.stop()


def test_nginx_closes_other_names_and_serves_the_plans(workdir: Path) -> None:
    plan = make_plan(workdir, "nginx", False, free_port(), free_port())
    port = plan.site.http_port
    with nginx_serving(workdir, plan):
        foreign = exchange(port, FOREIGN, f"/static/{MARKER}")
        named = exchange(port, "www.app.example", f"/static/{MARKER}")
    print(f"nginx HTTP, Host {FOREIGN}: {foreign!r}; Host www.app.example: {named.splitlines()[0]!r}")
    assert foreign == b""  # 444: closed, not one byte of response
    assert named.startswith(b"HTTP/1.1 200 ") and named.endswith(MARKER_TEXT.encode())


def test_nginx_tls_redirects_to_the_canonical_name_and_rejects_other_names(workdir: Path) -> None:
    plan = make_plan(workdir, "nginx", True, free_port(), free_port())
    http, https = plan.site.http_port, plan.site.https_port
    with nginx_serving(workdir, plan):
        redirect = exchange(http, "www.app.example", "/some/page?x=1")
        foreign = exchange(http, FOREIGN, "/some/page?x=1")
        foreign_acme = exchange(http, FOREIGN, f"/.well-known/acme-challenge/{TOKEN}")
        acme = exchange(http, "www.app.example", f"/.well-known/acme-challenge/{TOKEN}")
        rejected = handshake_error(https, FOREIGN)
        no_sni = handshake_error(https, "127.0.0.1")  # an IP address: Python sends no SNI
        named = exchange(https, "app.example", f"/static/{MARKER}", sni="app.example")
        # SNI of the site, Host of another name: nginx picks the server by Host.
        smuggled = exchange(https, FOREIGN, f"/static/{MARKER}", sni="app.example")
    print(f"nginx TLS, port 80 Host www.app.example: {status_and_location(redirect)}")
    print(f"nginx TLS, port 80 Host {FOREIGN}: {foreign!r}, ACME path {foreign_acme!r}")
    print(f"nginx TLS, handshake SNI {FOREIGN}: {rejected}; no SNI: {no_sni}")
    print(f"nginx TLS, SNI app.example: {named.splitlines()[0]!r}; same SNI, Host {FOREIGN}: {smuggled!r}")
    assert status_and_location(redirect) == (301, f"https://app.example:{https}/some/page?x=1")
    assert foreign == b"" and foreign_acme == b""
    assert acme.startswith(b"HTTP/1.1 200 ") and acme.endswith(b"challenge answer\n")
    assert rejected is not None and "UNRECOGNIZED_NAME" in rejected.upper()
    assert no_sni is not None
    assert named.startswith(b"HTTP/1.1 200 ") and named.endswith(MARKER_TEXT.encode())
    assert smuggled == b""


# -- Apache ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def apache_serving(workdir: Path, plan: Plan) -> Iterator[str]:
    apache2 = require_tool("apache2")
    root = workdir / "apache"
    root.mkdir()
    site = root / "site.conf"
    text = with_standin_certificates(plan, Apache(plan).render(), root, quoting.apache)
    site.write_text(text)
    conf = check_conf(root, site)
    # As root, the children drop to User: give them one that exists.
    conf.write_text(conf.read_text() + "TypesConfig /etc/mime.types\nUser nobody\nGroup nogroup\n")
    proc = Proc("apache", [apache2, "-d", str(root), "-f", str(conf), "-DFOREGROUND"], log_dir=root)
    try:
        started(proc, plan.site.http_port)
        yield text
    finally:
        proc.stop(timeout=10)


@pytest.mark.parametrize("tls", [False, True])
def test_apache_refuses_other_names(workdir: Path, tls: bool) -> None:
    plan = make_plan(workdir, "apache", tls, free_port(), free_port())
    http, https = plan.site.http_port, plan.site.https_port
    with apache_serving(workdir, plan):
        foreign = exchange(http, FOREIGN, f"/static/{MARKER}")
        named = exchange(http, "www.app.example", f"/static/{MARKER}?x=1")
        if tls:
            foreign_tls = exchange(https, FOREIGN, f"/static/{MARKER}", sni=FOREIGN)
            named_tls = exchange(https, "app.example", f"/static/{MARKER}", sni="app.example")
    print(f"Apache tls={tls}, Host {FOREIGN}: {status_and_location(foreign)}")
    print(f"Apache tls={tls}, Host www.app.example: {status_and_location(named)}")
    assert status_and_location(foreign) == (421, None)
    if tls:
        assert status_and_location(named) == (301, f"https://app.example:{https}/static/{MARKER}?x=1")
        print(f"Apache TLS, SNI {FOREIGN}: {status_and_location(foreign_tls)}")
        print(f"Apache TLS, SNI app.example: {named_tls.splitlines()[0]!r}")
        assert status_and_location(foreign_tls) == (421, None)
        assert named_tls.startswith(b"HTTP/1.1 200 ") and named_tls.endswith(MARKER_TEXT.encode())
    else:
        assert named.startswith(b"HTTP/1.1 200 ") and named.endswith(MARKER_TEXT.encode())
