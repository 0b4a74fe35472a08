"""Names outside the plan never reach the app; redirects go to the site's own name (issue 12 #8, issue 14 #4).

The rendered files, read back by structure (crossplane for nginx, ``apachectl -S``
for Apache's virtual-host order, ``caddy adapt`` for Caddy); tests/e2e/test_catch_all.py
sends the requests to the real servers.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploykit import quoting
from deploykit.plan import Plan, build_plan
from deploykit.targets.apache import Apache, check_conf
from deploykit.targets.caddy import Caddy
from deploykit.targets.nginx import Nginx
from deploykit.targets.tooling import with_standin_certificates
from tests import parsers
from tests.conftest import require_tool

CERT = {"TLS_CERTIFICATE": "/etc/ssl/c/fullchain.pem", "TLS_CERTIFICATE_KEY": "/etc/ssl/c/privkey.pem"}
#: A wildcard first: the canonical name is the first plain one.
NAMES = ["*.example.org", "example.org", "www.example.org"]


def plan(tls: bool, **extra: Any) -> Plan:
    return build_plan({"SERVER_NAMES": NAMES, **(CERT if tls else {}), **extra})


# -- nginx ----------------------------------------------------------------------------------------


def nginx_servers(p: Plan, tmp_path: Path) -> list[list[Any]]:
    """The server{} blocks of the rendered site, comments dropped: [[name, args, block], ...] each."""
    path = tmp_path / "site.conf"
    path.write_text(Nginx(p).render(), encoding="utf-8")

    def strip(tree: list[Any]) -> list[Any]:
        return [[n, a, strip(b) if b is not None else None] for n, a, b in tree if n != "#"]

    return [block for name, _, block in strip(parsers.nginx_tree(path)) if name == "server"]


def directives(server: list[Any], name: str) -> list[list[str]]:
    return [args for n, args, _ in server if n == name]


def catch_alls(servers: list[list[Any]]) -> list[list[Any]]:
    return [s for s in servers if any("default_server" in args for args in directives(s, "listen"))]


@pytest.mark.parametrize("tls", [False, True])
def test_nginx_default_server_closes_for_other_names(tls: bool, tmp_path: Path) -> None:
    servers = nginx_servers(plan(tls), tmp_path)
    defaults = catch_alls(servers)
    named = [s for s in servers if s not in defaults]
    # One catch-all per port the site listens on, on exactly the site's listen addresses.
    assert len(defaults) == (2 if tls else 1)
    site_listens = sorted(tuple(a) for s in named for a in directives(s, "listen"))
    default_listens = sorted(
        tuple(x for x in a if x != "default_server") for s in defaults for a in directives(s, "listen")
    )
    assert default_listens == sorted(set(site_listens))
    for server in defaults:
        assert all("default_server" in a for a in directives(server, "listen"))
        assert directives(server, "return") == [["444"]]
        assert directives(server, "server_name") == []
    # The named servers never claim default_server, and all carry every name.
    for server in named:
        assert directives(server, "server_name") == [NAMES]


def test_nginx_tls_default_server_rejects_the_handshake_under_the_sites_tls_policy(tmp_path: Path) -> None:
    servers = nginx_servers(plan(True), tmp_path)
    (tls_default,) = [s for s in catch_alls(servers) if any("ssl" in a for a in directives(s, "listen"))]
    assert directives(tls_default, "ssl_reject_handshake") == [["on"]]
    assert directives(tls_default, "ssl_certificate") == []
    # The default server's TLS settings govern the handshake on its address: the same policy as the site's.
    (site,) = [s for s in servers if directives(s, "ssl_certificate")]
    for name in ("ssl_protocols", "ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_session_tickets"):
        assert directives(tls_default, name) == directives(site, name) != []


def test_nginx_tls_with_an_ip_name_keeps_the_handshake(tmp_path: Path) -> None:
    """A client that asks for an IP address sends no SNI: the default server must complete the handshake."""
    servers = nginx_servers(build_plan({"SERVER_NAMES": ["example.org", "192.0.2.10"], **CERT}), tmp_path)
    (tls_default,) = [s for s in catch_alls(servers) if any("ssl" in a for a in directives(s, "listen"))]
    assert directives(tls_default, "ssl_reject_handshake") == []
    assert directives(tls_default, "ssl_certificate") == [[CERT["TLS_CERTIFICATE"]]]
    assert directives(tls_default, "return") == [["444"]]


@pytest.mark.parametrize(("https_port", "location"), [(443, "https://example.org"), (8443, "https://example.org:8443")])
def test_nginx_redirect_goes_to_the_canonical_name(https_port: int, location: str, tmp_path: Path) -> None:
    p = plan(True, HTTPS_PORT=https_port, ACME_WEBROOT="/var/www/acme")
    text = Nginx(p).render()
    assert "$host" not in text and "$http_host$request_uri" not in text
    servers = nginx_servers(p, tmp_path)
    (redirect,) = [s for s in servers if s not in catch_alls(servers) and not directives(s, "ssl_certificate")]
    locations = {tuple(args): block for name, args, block in redirect if name == "location"}
    assert directives(locations[("/",)], "return") == [["301", f"{location}$request_uri"]]
    # The ACME webroot stays on port 80 for the plan's names.
    assert directives(locations[("^~", "/.well-known/acme-challenge/")], "root") == [["/var/www/acme"]]


# -- Apache ---------------------------------------------------------------------------------------


def apache_vhosts(p: Plan, tmp_path: Path) -> str:
    """``apachectl -S``: Apache's own view of which virtual host is the default per address."""
    site = tmp_path / "site.conf"
    site.write_text(with_standin_certificates(p, Apache(p).render(), tmp_path, quoting.apache), encoding="utf-8")
    conf = check_conf(tmp_path, site)
    done = subprocess.run(
        [require_tool("apachectl"), "-d", str(tmp_path), "-f", str(conf), "-S"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("tls", [False, True])
def test_apache_first_virtual_host_refuses_other_names(tls: bool, tmp_path: Path) -> None:
    p = plan(tls, HTTP_PORT=8080, HTTPS_PORT=8443)
    dump = apache_vhosts(p, tmp_path)
    print(dump)
    ports = (8080, 8443) if tls else (8080,)
    for port in ports:
        assert re.search(rf"\*:{port} +is a NameVirtualHost\n +default server catch-all\.invalid ", dump), dump
    # The catch-all blocks answer 421 before anything else runs.
    text = Apache(p).render()
    blocks = re.findall(r"<VirtualHost [^>]+>\n(.*?)</VirtualHost>", text, re.S)
    catch_all_blocks = [b for b in blocks if "ServerName catch-all.invalid" in b]
    assert len(catch_all_blocks) == len(ports)
    for block in catch_all_blocks:
        assert "RewriteRule ^ - [R=421,L]" in block
        assert "ProxyPass" not in block and "ServerAlias" not in block


@pytest.mark.parametrize(("https_port", "location"), [(443, "https://example.org"), (8443, "https://example.org:8443")])
def test_apache_redirect_goes_to_the_canonical_name(https_port: int, location: str) -> None:
    text = Apache(plan(True, HTTPS_PORT=https_port)).render()
    assert "%{SERVER_NAME}" not in text and "%{HTTP_HOST}" not in text
    assert f'RewriteRule ^ "{location}%{{REQUEST_URI}}" [R=301,L]' in text


# -- Caddy ----------------------------------------------------------------------------------------


def caddy_routes(p: Plan, tmp_path: Path) -> dict[str, Any]:
    """The servers of ``caddy adapt``'s JSON, by listen address."""
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(with_standin_certificates(p, Caddy(p).render(), tmp_path, quoting.caddy), encoding="utf-8")
    env = {
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [require_tool("caddy"), "adapt", "--adapter", "caddyfile", "--config", str(caddyfile)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    servers = json.loads(done.stdout)["apps"]["http"]["servers"]
    return {",".join(s["listen"]): s for s in servers.values()}


def _hosts(route: dict[str, Any]) -> list[str] | None:
    for match in route.get("match", []):
        if "host" in match:
            return sorted(match["host"])
    return None


def _handlers(route: dict[str, Any]) -> str:
    return json.dumps(route.get("handle", []))


@pytest.mark.parametrize("tls", [False, True])
def test_caddy_http_port_aborts_other_names(tls: bool, tmp_path: Path) -> None:
    servers = caddy_routes(plan(tls, HTTP_PORT=8080, HTTPS_PORT=8443), tmp_path)
    routes = servers[":8080"]["routes"]
    # The last route has no host matcher: every other name, closed without a response.
    assert _hosts(routes[-1]) is None
    assert '"abort": true' in _handlers(routes[-1])
    assert all(_hosts(r) == sorted(NAMES) for r in routes[:-1])
    if tls:
        (redirect,) = routes[:-1]
        assert "https://example.org:8443{http.request.uri}" in _handlers(redirect)
        assert "{http.request.host}" not in _handlers(redirect)


@pytest.mark.parametrize("tls", [False, True])
def test_caddy_serves_the_site_only_for_its_names_and_ports(tls: bool, tmp_path: Path) -> None:
    """No server on a port the plan does not use, and no site route without the plan's names."""
    servers = caddy_routes(plan(tls, HTTP_PORT=8080, HTTPS_PORT=8443), tmp_path)
    assert sorted(servers) == ([":8080", ":8443"] if tls else [":8080"])
    for listen, server in servers.items():
        for route in server["routes"]:
            assert _hosts(route) == sorted(NAMES) or '"abort": true' in _handlers(route), (listen, route)
