"""What a TLS client negotiates with the generated nginx, Apache and Caddy (issue 14 item 15).

``openssl s_client`` against the real proxies serving the rendered files with a
stand-in self-signed P-256 certificate: key exchange groups, ALPN, session resumption.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploykit.plan import Plan
from tests.conftest import require_tool
from tests.e2e.test_catch_all import SERVING, make_plan, nginx_serving
from tests.e2e.test_catch_all import workdir as workdir
from tests.procs import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-catch-all")]

PROXIES = ["nginx", "apache", "caddy"]


def serving(workdir: Path, plan: Plan) -> Iterator[str]:
    return nginx_serving(workdir, plan) if plan.site.proxy == "nginx" else SERVING[plan.site.proxy](workdir, plan)


def s_client(port: int, *args: str) -> str:
    """``openssl s_client`` to 127.0.0.1:port with SNI app.example; stdout and stderr."""
    argv = [require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "app.example", *args]
    done = subprocess.run(argv, input=b"", capture_output=True, timeout=30)
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def tls_plan(workdir: Path, proxy: str) -> Plan:
    return make_plan(workdir, proxy, True, free_port(), free_port())


@pytest.mark.parametrize("proxy", PROXIES)
def test_each_curve_of_the_guidelines_completes_a_handshake(workdir: Path, proxy: str) -> None:
    """X25519, P-256 and P-384 (Caddy's defaults left P-384 out); no P-521, which the guidelines do not list."""
    plan = tls_plan(workdir, proxy)
    results = {}
    with serving(workdir, plan):
        for group in ("X25519", "P-256", "P-384", "P-521"):
            out = s_client(plan.site.https_port, "-groups", group, "-brief")
            found = re.search(r"(?:Server|Peer) Temp Key: (.+)", out)
            results[group] = found.group(1).strip() if found else "refused"
    print(f"{proxy}: {results}")
    assert results["X25519"].startswith("X25519")
    assert results["P-256"].startswith("ECDH, prime256v1")
    assert results["P-384"].startswith("ECDH, secp384r1")
    assert results["P-521"] == "refused"


@pytest.mark.parametrize("proxy", PROXIES)
def test_http2_is_offered_by_alpn(workdir: Path, proxy: str) -> None:
    plan = tls_plan(workdir, proxy)
    with serving(workdir, plan):
        out = s_client(plan.site.https_port, "-alpn", "h2,http/1.1")
    alpn = re.search(r"ALPN protocol: (\S+)", out)
    print(f"{proxy}: ALPN {alpn.group(1) if alpn else None}")
    assert alpn is not None and alpn.group(1) == "h2"


@pytest.mark.parametrize("proxy", PROXIES)
def test_tls12_sessions_resume(workdir: Path, proxy: str) -> None:
    """A returning TLS 1.2 client resumes: from the session cache (nginx, Apache: tickets off), or a ticket (Caddy)."""
    plan = tls_plan(workdir, proxy)
    with serving(workdir, plan):
        s_client(plan.site.https_port, "-tls1_2")  # every server process up
        # Up to three tries: on a loaded machine (CI, -n 2) Apache's first sequence once showed six
        # "New" while every run alone resumed. Without the session cache no try ever resumes.
        for _ in range(3):
            out = s_client(plan.site.https_port, "-tls1_2", "-reconnect")
            handshakes = re.findall(r"^(New|Reused), TLSv1\.2", out, re.M)
            if handshakes and handshakes[-1] == "Reused":
                break
            time.sleep(1)
        ticket = "TLS session ticket:" in s_client(plan.site.https_port, "-tls1_2")
    print(f"{proxy}: {handshakes}, ticket issued: {ticket}")
    # Before the session cache, Apache: six "New" (no way to resume with tickets off).
    assert handshakes[0] == "New" and handshakes[-1] == "Reused"
    assert ticket is (proxy == "caddy")
