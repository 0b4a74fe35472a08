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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit import quoting
from deploykit.plan import Plan, build_plan
from deploykit.targets.apache import Apache, check_conf
from deploykit.targets.apache import modules as apache_modules
from deploykit.targets.caddy import Caddy
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


@contextlib.contextmanager
def running(name: str, argv: list[str], root: Path, port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    """``argv`` started for the block, once it listens on ``port``; its log in the failure if it never does."""
    proc = Proc(name, argv, log_dir=root, env=env)
    try:
        try:
            wait_until(lambda: proc.alive() and listening(port), 15, f"{name} on port {port}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{proc.log()}") from None
        yield
    finally:
        proc.stop(timeout=10)


def write_site(text: str, plan: Plan, path: Path, quote: Callable[[str], str]) -> str:
    """The rendered ``text`` with stand-in certificates, written to ``path`` (its folder made)."""
    path.parent.mkdir(exist_ok=True)
    text = with_standin_certificates(plan, text, path.parent, quote)
    path.write_text(text)
    return text


def assert_site_answered(response: bytes) -> None:
    """The named site served the static file (only it has that location)."""
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(MARKER_TEXT.encode()), response[:300]


# -- nginx ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def nginx_serving(workdir: Path, plan: Plan) -> Iterator[str]:
    site = workdir / "site.conf"
    text = write_site(NginxTarget(plan).render(), plan, site, quoting.nginx)
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
    assert_site_answered(named)


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
    assert_site_answered(named)
    assert smuggled == b""


# -- Apache ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def apache_serving(workdir: Path, plan: Plan) -> Iterator[str]:
    root = workdir / "apache"
    text = write_site(Apache(plan).render(), plan, root / "site.conf", quoting.apache)
    conf = check_conf(root, root / "site.conf", apache_modules(plan))
    # As root, the children drop to User: give them one that exists.
    conf.write_text(conf.read_text() + "TypesConfig /etc/mime.types\nUser nobody\nGroup nogroup\n")
    with running(
        "apache", [require_tool("apache2"), "-d", str(root), "-f", str(conf), "-DFOREGROUND"], root, plan.site.http_port
    ):
        yield text


# -- Caddy ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def caddy_serving(workdir: Path, plan: Plan) -> Iterator[str]:
    root, site = workdir / "caddy", workdir / "caddy" / "site.Caddyfile"
    text = write_site(Caddy(plan).render(), plan, site, quoting.caddy)
    # The system Caddyfile's part: global options (no admin endpoint, the plan's ports), then the site.
    main = root / "Caddyfile"
    main.write_text(
        "{\n\tadmin off\n\tskip_install_trust\n"
        f"\thttp_port {plan.site.http_port}\n\thttps_port {plan.site.https_port}\n"
        f"\tstorage file_system {root}/data\n}}\n"
        f"import {site}\n"
    )
    env = {"HOME": str(root), "XDG_DATA_HOME": str(root), "XDG_CONFIG_HOME": str(root), "PATH": "/usr/bin:/bin"}
    argv = [require_tool("caddy"), "run", "--adapter", "caddyfile", "--config", str(main)]
    with running("caddy", argv, root, plan.site.http_port, env):
        yield text


# -- Apache and Caddy ------------------------------------------------------------------------------

SERVING = {"apache": apache_serving, "caddy": caddy_serving}


def attempt(port: int, host: str, path: str, sni: str) -> bytes | str:
    """The response over TLS, or the TLS error (a str) when the handshake is refused."""
    try:
        return exchange(port, host, path, sni=sni)
    except ssl.SSLError as exc:
        return str(exc)


def refused(proxy: str, response: bytes | str) -> bool:
    """How each proxy turns a name outside the plan away: Apache cannot close without a response (421)."""
    if proxy == "apache":
        return isinstance(response, bytes) and status_and_location(response) == (421, None)
    return response in (b"", "") or isinstance(response, str)


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("proxy", ["apache", "caddy"])
def test_other_names_are_refused_and_the_redirect_uses_the_canonical_name(workdir: Path, proxy: str, tls: bool) -> None:
    plan = make_plan(workdir, proxy, tls, free_port(), free_port())
    http, https = plan.site.http_port, plan.site.https_port
    path = f"/static/{MARKER}"
    with SERVING[proxy](workdir, plan):
        foreign = exchange(http, FOREIGN, path)
        named = exchange(http, "www.app.example", f"{path}?x=1")
        if tls:
            foreign_tls = attempt(https, FOREIGN, path, sni=FOREIGN)
            named_tls = attempt(https, "app.example", path, sni="app.example")
            # The site's SNI with another Host: never the site's response.
            smuggled = attempt(https, FOREIGN, path, sni="app.example")
    print(f"{proxy} tls={tls}, port {http} Host {FOREIGN}: {foreign[:120]!r}")
    print(f"{proxy} tls={tls}, port {http} Host www.app.example: {named[:120]!r}")
    assert refused(proxy, foreign)
    assert b"Location" not in foreign
    if not tls:
        assert_site_answered(named)
        return
    print(f"{proxy} TLS, SNI and Host {FOREIGN}: {foreign_tls[:120]!r}")
    print(f"{proxy} TLS, SNI app.example, Host {FOREIGN}: {smuggled[:120]!r}")
    assert status_and_location(named) == (301, f"https://app.example:{https}{path}?x=1")
    assert refused(proxy, foreign_tls)
    assert isinstance(named_tls, bytes)
    assert_site_answered(named_tls)
    assert isinstance(smuggled, str) or MARKER_TEXT.encode() not in smuggled
