"""The site's model: network addresses, TLS and what the reverse proxy serves (frozen dataclasses).

Split from :mod:`deploykit.plan.model`, which re-exports every name here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address literal (IPv6 with or without brackets)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def bracket(host: str) -> str:
    """``host`` as it goes before ``:port`` in every format: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class Bind:
    """Where a socket is: a unix socket path, a TCP host and port, or an inherited fd."""

    kind: Literal["unix", "tcp", "fd"]
    path: str = ""
    host: str = ""
    port: int = 0
    fd: int = -1

    @property
    def is_loopback(self) -> bool:
        return self.kind != "tcp" or self.host in ("127.0.0.1", "::1", "localhost")

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        return f"{bracket(self.host)}:{self.port}"


@dataclass(frozen=True)
class TLS:
    certificate: str | None = None
    certificate_key: str | None = None
    acme_webroot: str | None = None

    @property
    def mode(self) -> Literal["certificate", "acme"]:
        return "certificate" if self.certificate else "acme"


@dataclass(frozen=True)
class Site:
    """What the reverse proxy serves."""

    proxy: str
    server_names: tuple[str, ...]
    listen_address: str | None
    http_port: int
    https_port: int
    tls: TLS | None
    root_path: str
    static_url: str | None
    static_root: str | None
    media_url: str | None
    media_root: str | None
    max_body_size: int
    proxy_read_timeout: int
    hsts_seconds: int
    hsts_include_subdomains: bool
    hsts_preload: bool
    proxy_ssl_header: tuple[str, str] | None
    upstream: tuple[Bind, ...]
    sticky_sessions: bool
    #: The nginx that loads the site (NGINX_VERSION, else the one installed where the plan is
    #: built): it picks `http2 on;` (1.25.1+) or `listen ... http2`. None: unknown.
    nginx_version: tuple[int, ...] | None = None
    #: Whether the proxies pass HEALTH_PATH on from any client (default: loopback only).
    health_public: bool = False
    #: The CDN or load balancer in front of the proxy (addresses, networks): the proxy takes the
    #: client from their X-Forwarded-For (past every trusted hop) and the scheme from their
    #: X-Forwarded-Proto, then hands the app server that one address. Empty: the proxy is the edge.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def https(self) -> bool:
        """Whether the proxy serves HTTPS with a certificate it has (ACME-only means not yet)."""
        return self.tls is not None and self.tls.certificate is not None

    @property
    def hsts(self) -> str | None:
        """The Strict-Transport-Security value matching SECURE_HSTS_*, or None without TLS or HSTS."""
        if not self.https or self.hsts_seconds <= 0:
            return None
        value = f"max-age={self.hsts_seconds}"
        if self.hsts_include_subdomains:
            value += "; includeSubDomains"
        if self.hsts_preload:
            value += "; preload"
        return value

    @property
    def hosts(self) -> tuple[str, ...]:
        """The server names as a Host header carries them: IPv6 literals in brackets."""
        return tuple(bracket(name) for name in self.server_names)

    @property
    def canonical_host(self) -> str:
        """:attr:`canonical_name` as a Host header or URL carries it."""
        return bracket(self.canonical_name)

    @property
    def canonical_name(self) -> str:
        """The name redirects go to (and Apache's ServerName): the first host name, else the first address.

        Never a wildcard; an IP address only when no name is listed (Apache
        refuses an IPv6 ServerName, and a certificate names hosts).
        """
        plain = [n for n in self.server_names if not n.startswith((".", "*"))]
        named = [n for n in plain if not is_ip(n)]
        if named or plain:
            return (named or plain)[0].rstrip(".") or (named or plain)[0]
        return self.server_names[0].lstrip("*.")
