from __future__ import annotations

from pathlib import Path

from deploykit import quoting
from deploykit.nginxprefix import NginxPrefix
from deploykit.plan import Plan, bracket
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool, with_standin_certificates
from deploykit.targets.upstream import SlotUpstream
from deploykit.targets.web import (
    HASHED_STATIC_REGEX,
    HEALTH_SOURCES,
    IMMUTABLE_MAX_AGE,
    MEDIA_CSP,
    MOZILLA_GUIDELINES,
    MOZILLA_INTERMEDIATE_CIPHERS,
    MOZILLA_INTERMEDIATE_CURVES,
    MOZILLA_INTERMEDIATE_PROTOCOLS,
    has_ip_name,
    https_origin,
    internal_health_path,
    internal_metrics_path,
)

#: nginx 1.25.1 added ``http2 on;`` and deprecated ``listen ... http2`` (a warning at every start);
#: older versions do not know the directive (``nginx -t``: unknown directive "http2").
#: https://nginx.org/en/docs/http/ngx_http_v2_module.html#http2
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)


def retry_entries(workers: int) -> int:
    """How often a lone upstream server is listed: each try may meet one more worker that is stopping."""
    return 1 + min(workers, 3)


class Nginx(SlotUpstream, Target):
    name = "nginx"
    description = "nginx site, included inside http{} (sites-enabled): upstream, WebSocket, static, TLS"
    template = "deploykit/nginx/site.conf"
    file_name = "nginx.conf"
    tool = "nginx"
    upstream_template = "deploykit/nginx/upstream-file.conf"

    def __init__(self, plan: Plan, *, version: tuple[int, ...] | None = None) -> None:
        """``version``: the nginx that will load the file (Compose: its image's), else the plan's
        (``NGINX_VERSION``, or the one installed where the plan is built). Without one, the form
        every version reads (``listen ... http2``: at worst a deprecation warning on nginx >= 1.25.1).
        """
        super().__init__(plan)
        self.version = version

    def context(self) -> dict[str, object]:
        site = self.plan.site
        tls = site.tls

        def listen(port: int, suffix: str = "") -> list[str]:
            if site.listen_address is None:
                return [f"{port}{suffix}", f"[::]:{port}{suffix}"]
            return [f"{bracket(site.listen_address)}:{port}{suffix}"]

        upstream_name = f"{self.plan.app.slug}_asgi"
        wsgi = self.plan.wsgi
        split: dict[str, object] = {"app_target": upstream_name, "health_target": upstream_name}
        if wsgi is not None:
            split = {
                "wsgi_upstream": f"{self.plan.app.slug}_wsgi",
                "wsgi_address": str(wsgi.address),
                "upstream_choice": f"{self.plan.app.slug}_upstream",
                # nginx takes a variable naming an upstream block as that block (no resolver).
                "app_target": f"${self.plan.app.slug}_upstream",
                # The readiness endpoint is the ASGI application's (deploykit.routing): its channel-layer
                # round trip is the WebSocket side's.
                "health_target": upstream_name,
            }
        version = self.version or site.nginx_version
        http2_directive = version is not None and version >= HTTP2_DIRECTIVE_SINCE
        edge = bool(site.trusted_proxies)
        return {
            **split,
            "edge_flag": f"{self.plan.app.slug}_from_edge",
            "forwarded_proto_variable": f"{self.plan.app.slug}_forwarded_proto",
            "forwarded_proto": f"${self.plan.app.slug}_forwarded_proto" if edge else "$scheme",
            "plan": self.plan,
            "site": site,
            # Two slots: the upstream blocks live in this file (redeploy rewrites it).
            "upstream_file": self.plan.upstream_file,
            "upstream_name": upstream_name,
            "upstream": [str(b) for b in site.upstream],
            "upstream_entries": range(retry_entries(self.plan.server.total_processes)),
            "wsgi_entries": range(retry_entries(wsgi.workers if wsgi is not None else 1)),
            "https": site.https,
            "acme_webroot": None if tls is None else tls.acme_webroot,
            "http_listen": listen(site.http_port),
            "https_listen": listen(site.https_port, " ssl" if http2_directive else " ssl http2"),
            "http2_directive": http2_directive,
            "https_origin": https_origin(site),
            "reject_handshake": not has_ip_name(site),
            "hsts": site.hsts,
            "protocols": " ".join(MOZILLA_INTERMEDIATE_PROTOCOLS),
            "ciphers": MOZILLA_INTERMEDIATE_CIPHERS,
            "curves": ":".join(MOZILLA_INTERMEDIATE_CURVES),
            "guidelines": MOZILLA_GUIDELINES,
            "app_location": f"{site.root_path}/" if site.root_path else "/",
            "hashed_static_regex": HASHED_STATIC_REGEX,
            "immutable_max_age": IMMUTABLE_MAX_AGE,
            "media_csp": MEDIA_CSP,
            "health_location": internal_health_path(self.plan),
            "metrics_location": internal_metrics_path(self.plan),
            "health_sources": HEALTH_SOURCES,
            "static_root": None if site.static_root is None else site.static_root.rstrip("/") + "/",
            "media_root": None if site.media_root is None else site.media_root.rstrip("/") + "/",
        }

    def applies(self) -> bool:
        return self.plan.site.proxy == "nginx"

    def slot_target(self, slot: str) -> Nginx:
        return type(self)(self.plan.for_slot(slot), version=self.version)

    def upstream_quote(self, path: str) -> str:
        return quoting.nginx(path)

    def validate(self, content: str, workdir: Path) -> None:
        if self.plan.slots:
            self.validate_with_upstream(content, self.upstream_text(self.plan.slots[0].name), workdir)
        else:
            self._validate(content, workdir)

    def _validate(self, content: str, workdir: Path) -> None:
        nginx = self.require_tool()
        site = workdir / "site.conf"
        site.write_text(with_standin_certificates(self.plan, content, workdir, quoting.nginx), encoding="utf-8")
        prefix = NginxPrefix(workdir, nginx)
        prefix.write([site])
        run_tool(prefix.test_argv())
