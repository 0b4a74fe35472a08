"""What the three proxy targets (nginx, Apache, Caddy) share: TLS policy, immutable static files, ports.

One home for each: the templates differ by syntax, not by policy.
"""

from __future__ import annotations

import re

from deploykit.plan import Plan, Site, bracket, is_ip

#: Mozilla's Server Side TLS guidelines, "intermediate" configuration, version 6.0 (2026-04-06):
#: https://ssl-config.mozilla.org/guidelines/6.0.json, as its generator writes them for each server
#: (https://ssl-config.mozilla.org/#server=nginx&config=intermediate). Each template names the version.
MOZILLA_GUIDELINES = "6.0"
MOZILLA_INTERMEDIATE_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
#: TLS 1.2 only (TLS 1.3 suites: OpenSSL's and Go's defaults are the guidelines' three). 6.0 dropped
#: the DHE ones of 5.7, so no server needs a dhparam file.
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
#: The same ciphers by their IANA names (Caddy's, Go's).
MOZILLA_INTERMEDIATE_CIPHERS_IANA = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
#: tls_curves without the first, X25519MLKEM768: OpenSSL before 3.5 (Debian 12 and 13, Ubuntu 24.04)
#: and Caddy before 2.10 refuse the name at startup; Mozilla's generator drops it for them too.
MOZILLA_INTERMEDIATE_CURVES = ("X25519", "prime256v1", "secp384r1")
#: The same groups by Caddy's names.
CADDY_CURVES = ("x25519", "secp256r1", "secp384r1")
#: hsts_min_age: two years. The Strict-Transport-Security deploykit writes follows SECURE_HSTS_SECONDS
#: (Django's own header must say the same); W011 warns when preload is asked with less.
MOZILLA_HSTS_MIN_AGE = 63072000
#: ManifestStaticFilesStorage names files name.<12 hex>.ext: those never change.
HASH_DIGITS = 12
HASHED_STATIC_REGEX = rf"\.[0-9a-f]{{{HASH_DIGITS}}}\.[A-Za-z0-9]+$"
#: The same without braces, which a Caddyfile reads as placeholders.
HASHED_STATIC_REGEX_NO_BRACES = r"\." + "[0-9a-f]" * HASH_DIGITS + r"\.[A-Za-z0-9]+$"
#: A year, the longest Cache-Control lifetime browsers honour in practice.
IMMUTABLE_MAX_AGE = 31536000


def port_suffix(port: int, default: int) -> str:
    """``:port`` in a URL, or nothing for the scheme's default port."""
    return "" if port == default else f":{port}"


#: What a redirect's authority may hold: the plan's validated names (DNS labels, IP addresses) and a port.
_AUTHORITY = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
#: The catch-all's own name where a proxy needs one (Apache's first VirtualHost):
#: .invalid is reserved (RFC 6761), so no request's Host is ever this.
CATCH_ALL_NAME = "catch-all.invalid"


def https_origin(site: Site) -> str:
    """``https://canonical-name[:port]``: where the HTTP site redirects, whatever Host the client sent.

    Never the request's own Host: a client sending ``Host: evil.example`` must
    not get a ``Location`` on that name (issue 14, item 4).
    """
    host = bracket(site.canonical_name)
    if not _AUTHORITY.fullmatch(host):
        raise ValueError(f"{host!r} cannot be written bare in a redirect URL")
    return f"https://{host}{port_suffix(site.https_port, 443)}"


#: For MEDIA_URL: an uploaded HTML or SVG file opened by the browser is a sandboxed
#: document (a unique origin, no script, no form) that may load nothing, so it cannot
#: act on the site's origin (issue 14 item 2). https://www.w3.org/TR/CSP3/#directive-sandbox
MEDIA_CSP = "sandbox; default-src 'none'"
#: Who may call the readiness path through the proxy unless DEPLOYKIT["HEALTH_PUBLIC"]: the
#: machine itself (systemd, a monitoring agent). Container probes call the app's own port,
#: never the proxy. Exactly these two, not 127.0.0.0/8: nothing else is "this machine".
HEALTH_SOURCES = ("127.0.0.1", "::1")


def internal_health_path(plan: Plan) -> str | None:
    """The URL path of the readiness endpoint the proxy keeps to HEALTH_SOURCES, or None.

    Each call costs a database query and a channel-layer round trip, and a
    stranger needs no more than the site's own status (issue 14 item 1).
    """
    if plan.app.health_path is None or plan.site.health_public:
        return None
    return plan.site.root_path + plan.app.health_path


def internal_metrics_path(plan: Plan) -> str | None:
    """The URL path of METRICS_PATH, which the proxy keeps to HEALTH_SOURCES always (HEALTH_PUBLIC does not
    open it): what a service counts is not a stranger's business, and a scrape reads Redis. Prometheus on
    this machine scrapes through the proxy; in a cluster it scrapes the pod's port (issue 17 item 7)."""
    if plan.metrics is None:
        return None
    return plan.site.root_path + plan.metrics.path


def has_ip_name(site: Site) -> bool:
    """Whether a server name is an IP address: TLS clients send no SNI for those, so the
    default server's handshake must succeed (nginx cannot reject it)."""
    return any(is_ip(name) for name in site.server_names)
