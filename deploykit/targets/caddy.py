from __future__ import annotations

import re
from pathlib import Path

from deploykit import quoting
from deploykit.plan import Bind, bracket
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool, with_standin_certificates
from deploykit.targets.upstream import SlotUpstream
from deploykit.targets.web import (
    CADDY_CURVES,
    HASHED_STATIC_REGEX_NO_BRACES,
    HEALTH_SOURCES,
    IMMUTABLE_MAX_AGE,
    MEDIA_CSP,
    MOZILLA_GUIDELINES,
    MOZILLA_INTERMEDIATE_CIPHERS_IANA,
    https_origin,
    internal_health_path,
    internal_metrics_path,
)

#: A site address of the plan's validated names, written bare. Caddy 2.6.2 adapts
#: "`http://a:8080`, `http://b:8080` {...}" into the site on :8080 for a and b plus
#: the same site on :443 with no host matcher (every Host), and refuses two such
#: blocks ("ambiguous site definition: "); bare addresses give only the first.
_BARE_ADDRESS = re.compile(r"https?://(?:[A-Za-z0-9*.-]+|\[[0-9A-Fa-f:.]+\])?:[0-9]+")


#: X-Forwarded-For as Caddy passes it on from a trusted edge, "CLIENT-WRITTEN..., EDGE-SAW, PEER":
#: the address the edge appended, the one before the peer Caddy appended. From an untrusted peer
#: Caddy's header is the peer alone, which this does not match (kept).
EDGE_HOP_PATTERN = r"^(?:.*,)?\s*([0-9A-Fa-f:.]+)\s*,\s*[0-9A-Fa-f:.]+$"


def bare_address(address: str) -> str:
    if not _BARE_ADDRESS.fullmatch(address):
        raise ValueError(f"{address!r} cannot be a bare Caddyfile site address")
    return address


def caddy_names(server_names: tuple[str, ...]) -> list[str]:
    """Django's host patterns as Caddy site names.

    Django's ``.example.com`` is the domain and every subdomain: Caddy writes
    that as two names. A fully-qualified ``example.com.`` is ``example.com``
    (Caddy refuses the dot: "subject does not qualify for certificate").
    """
    names: list[str] = []
    for name in server_names:
        name = name.rstrip(".") if len(name) > 1 else name
        names += [f"*{name}", name[1:]] if name.startswith(".") else [name]
    return list(dict.fromkeys(names))


def caddy_upstream(bind: Bind) -> str:
    return f"unix/{bind.path}" if bind.kind == "unix" else str(bind)


class Caddy(SlotUpstream, Target):
    name = "caddy"
    description = "Caddyfile: reverse_proxy to the socket(s), file_server for static, automatic or given TLS"
    template = "deploykit/caddy/Caddyfile"
    file_name = "Caddyfile"
    tool = "caddy"
    upstream_template = "deploykit/caddy/upstream-file.caddy"

    def context(self) -> dict[str, object]:
        site = self.plan.site
        tls = site.tls
        https = tls is not None
        port = site.https_port if https else site.http_port
        # http:// turns Caddy's automatic HTTPS off; https:// with a certificate
        # serves it; with only an ACME webroot, Caddy gets certificates itself.
        scheme = "https" if https else "http"
        names = caddy_names(site.server_names)
        addresses = [bare_address(f"{scheme}://{bracket(name)}:{port}") for name in names]
        # With HTTPS, the site's names on the HTTP port redirect to the canonical one.
        redirect_addresses = [bare_address(f"http://{bracket(n)}:{site.http_port}") for n in names]
        upstream = [caddy_upstream(b) for b in site.upstream]
        wsgi = self.plan.wsgi
        snippets = {"asgi_snippet": f"{self.plan.app.slug}_asgi", "wsgi_snippet": f"{self.plan.app.slug}_wsgi"}
        wsgi_upstream = [] if wsgi is None else [caddy_upstream(wsgi.address)]
        asgi: tuple[list[str], str]
        http: tuple[list[str], str]
        if self.plan.upstream_file is not None:
            # Two slots: the servers are in the upstream file's snippets, which redeploy rewrites.
            asgi, http = ([], snippets["asgi_snippet"]), ([], snippets["wsgi_snippet"])
        else:
            asgi, http = (upstream, ""), (wsgi_upstream, "")
        proxies = [("", *asgi)] if wsgi is None else [("@websocket", *asgi), ("", *http)]
        if wsgi is not None and self.plan.metrics is not None:
            # METRICS_PATH is the ASGI server's to answer (a named matcher: Caddy keeps their order).
            proxies.insert(0, ("@metrics_asgi", *asgi))
        return {
            "edge_hop_pattern": EDGE_HOP_PATTERN,
            **snippets,
            "upstream_file": self.plan.upstream_file,
            "proxies": proxies,
            "wsgi_upstream": None if wsgi is None else caddy_upstream(wsgi.address),
            "plan": self.plan,
            "site": site,
            "addresses": addresses,
            "redirect_addresses": redirect_addresses if https else [],
            # web.https_origin checked it is made of host name characters: bare in the Caddyfile, before {uri}.
            "https_origin": https_origin(site) if https else None,
            "catch_all_address": bare_address(f"http://:{site.http_port}"),
            "certificate": None if tls is None else tls.certificate,
            "https": https,
            "guidelines": MOZILLA_GUIDELINES,
            "ciphers": MOZILLA_INTERMEDIATE_CIPHERS_IANA,
            "curves": CADDY_CURVES,
            "upstream": upstream,
            "app_matcher": f"{site.root_path}/*" if site.root_path else None,
            "hsts": site.hsts,
            "hashed_static_regex": HASHED_STATIC_REGEX_NO_BRACES,
            "immutable_max_age": IMMUTABLE_MAX_AGE,
            "media_csp": MEDIA_CSP,
            "health_location": internal_health_path(self.plan),
            "metrics_location": internal_metrics_path(self.plan),
            "health_sources": HEALTH_SOURCES,
        }

    def applies(self) -> bool:
        return self.plan.site.proxy == "caddy"

    def upstream_quote(self, path: str) -> str:
        return quoting.caddy(path)

    def validate(self, content: str, workdir: Path) -> None:
        if self.plan.slots:
            self.validate_with_upstream(content, self.upstream_text(self.plan.slots[0].name), workdir)
        else:
            self._validate(content, workdir)

    def _validate(self, content: str, workdir: Path) -> None:
        caddy = self.require_tool()
        caddyfile = workdir / "Caddyfile"
        caddyfile.write_text(with_standin_certificates(self.plan, content, workdir, quoting.caddy), encoding="utf-8")
        # Caddy keeps state (certificates, locks) under XDG_DATA_HOME/HOME: the temp dir.
        env = {
            "HOME": str(workdir),
            "XDG_DATA_HOME": str(workdir),
            "XDG_CONFIG_HOME": str(workdir),
            "PATH": "/usr/bin:/bin",
        }
        run_tool([caddy, "validate", "--adapter", "caddyfile", "--config", str(caddyfile)], env=env)
