"""The real client address behind a CDN or a cloud load balancer (issue 17, item 4).

Real nginx, Apache and Caddy serve the files deploykit renders, in front of a real
server: the plan's own uvicorn argv (``--proxy-headers --forwarded-allow-ips '*'`` on the
plan's unix socket) running a stand-in application that answers with the client address
and scheme it was given, and the X-Forwarded-For it received. 127.0.0.2 stands for the
CDN (listed in TRUSTED_PROXIES), 127.0.0.3 for anyone else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit.plan import Plan
from deploykit.servers import get_backend
from tests.e2e import test_audit_proxies as audit
from tests.e2e.test_audit_proxies import NAME, make_plan
from tests.e2e.test_catch_all import SERVING, nginx_serving
from tests.procs import Proc, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-real-client-ip")]

#: The audit's folder: the socket's directory, which Apache's children may enter.
workdir = audit.workdir

EDGE = "127.0.0.2"
#: A second edge behind the first (a CDN in front of a load balancer): both trusted.
INNER_EDGE = "127.0.0.4"
STRANGER = "127.0.0.3"
CLIENT = "203.0.113.9"
FORGED = "198.51.100.66"
PRIVATE_CLIENT = "10.8.0.5"
PROXIES = ["nginx", "apache", "caddy"]

#: What the application saw: the server applied X-Forwarded-For/-Proto before this runs.
WHO = """\
import json

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    body = json.dumps({
        "client": scope["client"][0] if scope.get("client") else None,
        "scheme": scope["scheme"],
        "x_forwarded_for": headers.get(b"x-forwarded-for", b"").decode("latin-1"),
        "x_real_ip": headers.get(b"x-real-ip", b"").decode("latin-1") or None,
    }).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""


def edge_plan(root: Path, proxy: str, trusted: list[str]) -> Plan:
    (root / "realip_app.py").write_text(WHO)
    with override_settings(ASGI_APPLICATION="realip_app.app"):
        return make_plan(root, proxy, TRUSTED_PROXIES=trusted, WORKERS=1, SERVER="uvicorn", VIRTUALENV=sys.prefix)


@contextlib.contextmanager
def real_stack(root: Path, plan: Plan) -> Iterator[None]:
    """The plan's own server argv and environment on its socket, the plan's proxy in front."""
    backend = get_backend(plan)
    sock = plan.server.address.path
    env = {**os.environ, **backend.environment(), "PYTHONPATH": str(root)}
    proc = Proc("server", backend.argv(), log_dir=root, env=env)
    serving = nginx_serving if plan.site.proxy == "nginx" else SERVING[plan.site.proxy]
    try:
        wait_until(lambda: proc.alive() and Path(sock).exists(), 20, "the server's socket")
        with serving(root, plan):
            yield
    finally:
        proc.stop(timeout=10)


def seen(port: int, source: str, headers: dict[str, str]) -> dict[str, Any]:
    """What the app saw for one request from ``source`` carrying ``headers``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/who", headers={"Host": NAME, **headers})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body[:300])
        return dict(json.loads(body))
    finally:
        conn.close()


@pytest.mark.parametrize("proxy", PROXIES)
def test_the_app_sees_the_client_the_trusted_edge_names(workdir: Path, proxy: str) -> None:
    plan = edge_plan(workdir, proxy, [EDGE])
    port = plan.site.http_port
    with real_stack(workdir, plan):
        via_edge = seen(port, EDGE, {"X-Forwarded-For": CLIENT})
        stranger = seen(port, STRANGER, {"X-Forwarded-For": CLIENT, "X-Real-IP": CLIENT})
        forged_chain = seen(port, EDGE, {"X-Forwarded-For": f"{FORGED}, {CLIENT}"})
        stranger_chain = seen(port, STRANGER, {"X-Forwarded-For": f"{FORGED}, {CLIENT}"})
        no_header = seen(port, EDGE, {})
        # A client with a private address (a VPN user through an internal load balancer) is itself too.
        private = seen(port, EDGE, {"X-Forwarded-For": PRIVATE_CLIENT})
    print(f"{proxy}: edge {via_edge}; stranger {stranger}; forged chain {forged_chain}; no header {no_header}")
    assert via_edge["client"] == CLIENT
    assert stranger["client"] == STRANGER
    assert forged_chain["client"] == CLIENT
    assert stranger_chain["client"] == STRANGER
    assert no_header["client"] == EDGE
    assert private["client"] == PRIVATE_CLIENT
    # The server is handed exactly one address, the one it must believe (it trusts its proxy).
    for result, address in ((via_edge, CLIENT), (stranger, STRANGER), (forged_chain, CLIENT)):
        assert result["x_forwarded_for"] == address
    # And no second header naming another one (a client's X-Real-IP, which some libraries read).
    assert stranger["x_real_ip"] is None


@pytest.mark.parametrize("proxy", PROXIES)
def test_the_scheme_comes_from_the_trusted_edge_only(workdir: Path, proxy: str) -> None:
    """The CDN terminates TLS and reaches the origin over HTTP: its X-Forwarded-Proto is the client's scheme."""
    plan = edge_plan(workdir, proxy, [EDGE])
    port = plan.site.http_port
    with real_stack(workdir, plan):
        edge_https = seen(port, EDGE, {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        stranger_https = seen(port, STRANGER, {"X-Forwarded-Proto": "https"})
        edge_none = seen(port, EDGE, {"X-Forwarded-For": CLIENT})
    print(f"{proxy}: edge https {edge_https}; stranger https {stranger_https}; edge none {edge_none}")
    assert edge_https["scheme"] == "https"
    assert stranger_https["scheme"] == "http"
    assert edge_none["scheme"] == "http"


@pytest.mark.parametrize("proxy", ["nginx", "apache"])
def test_two_trusted_edges_in_a_row(workdir: Path, proxy: str) -> None:
    """A CDN in front of a load balancer: past every trusted hop (nginx real_ip_recursive, mod_remoteip)."""
    plan = edge_plan(workdir, proxy, [EDGE, INNER_EDGE])
    with real_stack(workdir, plan):
        chained = seen(plan.site.http_port, EDGE, {"X-Forwarded-For": f"{FORGED}, {CLIENT}, {INNER_EDGE}"})
    print(f"{proxy}: {chained}")
    assert chained["client"] == CLIENT
    assert chained["x_forwarded_for"] == CLIENT


def test_caddy_believes_one_edge_hop(workdir: Path) -> None:
    """Caddy 2.6 has no client placeholder past several hops: behind two edges the app sees the outer one,
    never an address a client wrote (README: use nginx or Apache there)."""
    plan = edge_plan(workdir, "caddy", [EDGE, INNER_EDGE])
    with real_stack(workdir, plan):
        chained = seen(plan.site.http_port, EDGE, {"X-Forwarded-For": f"{FORGED}, {CLIENT}, {INNER_EDGE}"})
    assert (chained["client"], chained["x_forwarded_for"]) == (INNER_EDGE, INNER_EDGE)


def test_without_trusted_proxies_the_edge_is_the_client(workdir: Path) -> None:
    """Today's behaviour stays the default: with no TRUSTED_PROXIES, nobody can name another address."""
    plan = edge_plan(workdir, "nginx", [])
    with real_stack(workdir, plan):
        result = seen(plan.site.http_port, EDGE, {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
    assert (result["client"], result["scheme"], result["x_forwarded_for"]) == (EDGE, "http", EDGE)


def test_a_real_project_behind_a_cdn() -> None:
    """tests/projects/envsettings (its own settings package, SECURE_PROXY_SSL_HEADER) with TRUSTED_PROXIES in its
    DEPLOYKIT: ``runasgi`` and ``deployconfig nginx --check`` from its manage.py, real nginx, Django's REMOTE_ADDR."""
    from tests.e2e.test_projects import ENVSETTINGS, copy_project
    from tests.procs import (
        Nginx,
        RedisServer,
        free_port,
        project_manage,
        settings_variant,
        short_tmpdir,
        start_or_refuse,
    )

    workdir = short_tmpdir("edgeproj")
    redis = RedisServer(workdir)
    nginx: Nginx | None = None
    outcome = None
    try:
        redis.start()
        project_dir, env = copy_project(ENVSETTINGS, workdir, redis)
        port = free_port()
        body = f'DEPLOYKIT = {{"TRUSTED_PROXIES": ["{EDGE}"], "LISTEN_ADDRESS": "127.0.0.1", "HTTP_PORT": {port}}}'
        settings_variant(project_dir / "envsite" / "settings", "edge", "envsite.settings.production", body)
        env["DJANGO_SETTINGS_MODULE"] = "envsite.settings.edge"
        sock = str(workdir / "app.sock")
        args = ["--server", "uvicorn", "--workers", "1", "--uds", sock]
        outcome = start_or_refuse("uvicorn", project_dir, env, args, sock, workdir, timeout=40)
        assert not outcome.refused, outcome.output[-2000:]
        done = project_manage(project_dir, env, "deployconfig", "nginx", "--check", *args)
        assert done.returncode == 0, done.stderr
        assert f"set_real_ip_from {EDGE};" in done.stdout
        (workdir / "site.conf").write_text(done.stdout)
        nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
        nginx.start()

        def whoami(source: str, headers: dict[str, str]) -> dict[str, Any]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
            try:
                conn.request("GET", "/whoami/", headers={"Host": "127.0.0.1", **headers})
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, body[:300]
                return dict(json.loads(body))
            finally:
                conn.close()

        cdn = whoami(EDGE, {"X-Forwarded-For": f"{FORGED}, {CLIENT}", "X-Forwarded-Proto": "https"})
        stranger = whoami(STRANGER, {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
    finally:
        if nginx is not None:
            nginx.stop()
        if outcome is not None:
            outcome.proc.stop(timeout=15)
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"envsettings: via the CDN {cdn}; stranger {stranger}")
    # (envsettings' /whoami/ also names the answering pid: the split e2e needs it.)
    assert (cdn["remote_addr"], cdn["is_secure"]) == (CLIENT, True)
    assert (stranger["remote_addr"], stranger["is_secure"]) == (STRANGER, False)
