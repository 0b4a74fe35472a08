from __future__ import annotations

from pathlib import Path

from deploykit import quoting
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool, with_standin_certificates
from deploykit.targets.web import HASHED_STATIC_REGEX_NO_BRACES, IMMUTABLE_MAX_AGE


class Caddy(Target):
    name = "caddy"
    description = "Caddyfile: reverse_proxy to the socket(s), file_server for static, automatic or given TLS"
    template = "deploykit/caddy/Caddyfile"
    file_name = "Caddyfile"
    tool = "caddy"

    def context(self) -> dict[str, object]:
        site = self.plan.site
        tls = site.tls
        https = tls is not None
        port = site.https_port if https else site.http_port
        # http:// turns Caddy's automatic HTTPS off; https:// with a certificate
        # serves it; with only an ACME webroot, Caddy gets certificates itself.
        scheme = "https" if https else "http"
        addresses = [f"{scheme}://{name}:{port}" for name in site.server_names]
        upstream = [f"unix/{b.path}" if b.kind == "unix" else str(b) for b in site.upstream]
        return {
            "plan": self.plan,
            "site": site,
            "addresses": addresses,
            "certificate": None if tls is None else tls.certificate,
            "upstream": upstream,
            "app_matcher": f"{site.root_path}/*" if site.root_path else None,
            "hsts": site.hsts,
            "hashed_static_regex": HASHED_STATIC_REGEX_NO_BRACES,
            "immutable_max_age": IMMUTABLE_MAX_AGE,
        }

    def applies(self) -> bool:
        return self.plan.site.proxy == "caddy"

    def validate(self, content: str, workdir: Path) -> None:
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
