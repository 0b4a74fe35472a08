"""The proxies' TLS directives against Mozilla's intermediate guidelines (issue 14 item 15).

The values are the ones of https://ssl-config.mozilla.org/guidelines/6.0.json, copied here by hand
so that a change of deploykit's constants has to change this file too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit import quoting
from deploykit.exceptions import SpecError
from deploykit.nginxprefix import NginxPrefix
from deploykit.plan import Plan, build_plan
from deploykit.plan.machine import installed_nginx_version
from deploykit.targets import web
from deploykit.targets.apache import MODULES, Apache
from deploykit.targets.caddy import Caddy
from deploykit.targets.nginx import Nginx
from deploykit.targets.tooling import with_standin_certificates
from tests.conftest import require_tool
from tests.parsers import nginx_tree

#: guidelines 6.0, "intermediate": ciphers.openssl and ciphers.iana (TLS 1.2; 6.0 dropped the DHE ones).
OPENSSL_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
IANA_CIPHERS = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 "
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 "
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
)
#: tls_curves without X25519MLKEM768, which OpenSSL before 3.5 does not know.
CURVES = "X25519:prime256v1:secp384r1"


def tls_plan(proxy: str, **extra: Any) -> Plan:
    with override_settings(SECURE_HSTS_SECONDS=63072000):
        return build_plan(
            {
                "PROXY": proxy,
                "SERVER_NAMES": ["app.example"],
                "TLS_CERTIFICATE": "/etc/ssl/app/fullchain.pem",
                "TLS_CERTIFICATE_KEY": "/etc/ssl/app/privkey.pem",
                **extra,
            }
        )


def servers(tree: list[Any]) -> list[list[Any]]:
    return [block for name, _, block in tree if name == "server"]


def directive(block: list[Any], name: str) -> list[list[str]]:
    return [args for n, args, _ in block if n == name]


def test_the_policy_is_mozillas_intermediate_of_guidelines_6_0() -> None:
    assert web.MOZILLA_GUIDELINES == "6.0"
    assert web.MOZILLA_INTERMEDIATE_PROTOCOLS == ("TLSv1.2", "TLSv1.3")
    assert web.MOZILLA_INTERMEDIATE_CIPHERS == OPENSSL_CIPHERS
    assert " ".join(web.MOZILLA_INTERMEDIATE_CIPHERS_IANA) == IANA_CIPHERS
    assert ":".join(web.MOZILLA_INTERMEDIATE_CURVES) == CURVES
    assert web.MOZILLA_HSTS_MIN_AGE == 63072000


def test_nginx_tls_servers_follow_the_guidelines(tmp_path: Path) -> None:
    path = tmp_path / "site.conf"
    path.write_text(Nginx(tls_plan("nginx"), version=(1, 22, 1)).render())
    tls_servers = [s for s in servers(nginx_tree(path)) if directive(s, "ssl_protocols")]
    assert len(tls_servers) == 2  # the catch-all's handshake and the site's
    for server in tls_servers:
        assert directive(server, "ssl_protocols") == [["TLSv1.2", "TLSv1.3"]]
        assert directive(server, "ssl_ciphers") == [[OPENSSL_CIPHERS]]
        assert directive(server, "ssl_ecdh_curve") == [[CURVES]]
        assert directive(server, "ssl_prefer_server_ciphers") == [["off"]]
        assert directive(server, "ssl_session_timeout") == [["1d"]]
        assert directive(server, "ssl_session_tickets") == [["off"]]
        assert not directive(server, "ssl_dhparam")  # no DHE cipher left to use it


def test_nginx_http2_follows_the_version_that_loads_the_file(tmp_path: Path) -> None:
    """``listen ... http2`` up to nginx 1.25.0; ``http2 on;`` from 1.25.1, which deprecates the former."""
    plan = tls_plan("nginx")
    forms = {}
    for version in ((1, 22, 1), (1, 25, 1), (1, 28, 0)):
        path = tmp_path / f"site-{version}.conf"
        path.write_text(Nginx(plan, version=version).render())
        tls_servers = [s for s in servers(nginx_tree(path)) if directive(s, "ssl_protocols")]
        forms[version] = [({tuple(a) for a in directive(s, "listen")}, directive(s, "http2")) for s in tls_servers]
    assert forms[(1, 22, 1)] == [
        ({("443", "ssl", "http2", "default_server"), ("[::]:443", "ssl", "http2", "default_server")}, []),
        ({("443", "ssl", "http2"), ("[::]:443", "ssl", "http2")}, []),
    ]
    new = [
        ({("443", "ssl", "default_server"), ("[::]:443", "ssl", "default_server")}, [["on"]]),
        ({("443", "ssl"), ("[::]:443", "ssl")}, [["on"]]),
    ]
    assert forms[(1, 25, 1)] == forms[(1, 28, 0)] == new


def test_nginx_here_takes_the_form_it_is_given(tmp_path: Path) -> None:
    """The real nginx: its own form passes ``nginx -t``; the other does not (1.22: unknown ``http2``)."""
    nginx = require_tool("nginx")
    here = installed_nginx_version()
    assert here is not None
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "nginx version: nginx/" + ".".join(map(str, here))
    plan = tls_plan("nginx")
    results = {}
    for label, version in (("here", here), ("old", (1, 22, 1)), ("new", (1, 25, 1))):
        root = tmp_path / label
        root.mkdir()
        site = root / "site.conf"
        site.write_text(with_standin_certificates(plan, Nginx(plan, version=version).render(), root, quoting.nginx))
        prefix = NginxPrefix(root, nginx)
        prefix.write([site])
        test = subprocess.run(prefix.test_argv(), capture_output=True, text=True)
        results[label] = (test.returncode, test.stderr)
    print({k: (code, err.strip().splitlines()[-1:]) for k, (code, err) in results.items()})
    assert results["here"][0] == 0 and "deprecated" not in results["here"][1]
    if here < (1, 25, 1):
        assert results["new"][0] != 0 and 'unknown directive "http2"' in results["new"][1]
    else:
        assert results["old"][0] == 0 and "deprecated" in results["old"][1]


def test_apache_tls_follows_the_guidelines() -> None:
    text = Apache(tls_plan("apache")).render()
    top = text.split("<VirtualHost", 1)[0]
    # Server-wide only (mod_ssl refuses it inside <VirtualHost>): before the first one.
    assert "\nSSLSessionCache shmcb\n" in top
    vhosts = text.split("<VirtualHost")[1:]
    tls_vhosts = [v for v in vhosts if "SSLEngine on" in v]
    assert len(tls_vhosts) == 2
    for vhost in tls_vhosts:
        lines = [line.strip() for line in vhost.splitlines()]
        assert "SSLProtocol -all +TLSv1.2 +TLSv1.3" in lines
        assert f"SSLCipherSuite {OPENSSL_CIPHERS}" in lines
        assert f"SSLOpenSSLConfCmd Curves {CURVES}" in lines
        assert "SSLHonorCipherOrder off" in lines
        assert "SSLSessionTickets off" in lines
        assert "Protocols h2 http/1.1" in lines
    assert "http2" in MODULES


def test_caddy_tls_follows_the_guidelines() -> None:
    text = Caddy(tls_plan("caddy")).render()
    block = text.split("\ttls ", 1)[1].split("\n\t}\n", 1)[0]
    lines = [line.strip() for line in block.splitlines()]
    assert "protocols tls1.2 tls1.3" in lines
    assert f"ciphers {IANA_CIPHERS}" in lines
    assert "curves x25519 secp256r1 secp384r1" in lines


@pytest.mark.parametrize("proxy", ["nginx", "apache", "caddy"])
def test_the_guidelines_version_is_named_in_the_file(proxy: str) -> None:
    target = {"nginx": Nginx, "apache": Apache, "caddy": Caddy}[proxy]
    assert "guidelines 6.0" in target(tls_plan(proxy)).render()


@pytest.mark.parametrize(("version", "form"), [("1.26.2", "http2 on;"), ("1.22.1", "ssl http2;")])
def test_the_plans_nginx_version_picks_the_http2_form(version: str, form: str) -> None:
    # NGINX_VERSION names the nginx that will load the file (deployconfig may run elsewhere).
    plan = tls_plan("nginx", NGINX_VERSION=version)
    assert plan.site.nginx_version == tuple(int(p) for p in version.split("."))
    assert form in Nginx(plan).render()


def test_an_invalid_nginx_version_names_the_setting() -> None:
    with pytest.raises(SpecError, match=r"NGINX_VERSION"):
        tls_plan("nginx", NGINX_VERSION="1.25;")
