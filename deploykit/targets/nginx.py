from __future__ import annotations

import os
from pathlib import Path

from deploykit import quoting
from deploykit.plan import bracket
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool, with_standin_certificates
from deploykit.targets.web import (
    HASHED_STATIC_REGEX,
    HEALTH_SOURCES,
    IMMUTABLE_MAX_AGE,
    MEDIA_CSP,
    MOZILLA_INTERMEDIATE_CIPHERS,
    MOZILLA_INTERMEDIATE_PROTOCOLS,
    has_ip_name,
    https_origin,
    internal_health_path,
)

#: Enough of http{} to check a site file that expects to be included in it,
#: run by any user: every path nginx opens lives in the temp prefix.
_CHECK_CONF = """\
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include /etc/nginx/mime.types;
{includes}}}
"""


def check_prefix(prefix: Path, site_files: list[Path]) -> Path:
    """Write a minimal nginx.conf in ``prefix`` that includes ``site_files`` inside http{}; return its path.

    ``nginx -t -p PREFIX -c CONF -e PREFIX/error.log`` (or without -t, to
    serve) then runs unprivileged. The tests and the benchmark use it too.
    """
    includes = "".join(f"    include {quoting.nginx(str(f))};\n" for f in site_files)
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / temp).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    # Run by root, workers would drop to nobody, who cannot enter a private temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(_CHECK_CONF.format(user=user, prefix=prefix, includes=includes), encoding="utf-8")
    return conf


class Nginx(Target):
    name = "nginx"
    description = "nginx site, included inside http{} (sites-enabled): upstream, WebSocket, static, TLS"
    template = "deploykit/nginx/site.conf"
    file_name = "nginx.conf"
    tool = "nginx"

    def context(self) -> dict[str, object]:
        site = self.plan.site
        tls = site.tls

        def listen(port: int, suffix: str = "") -> list[str]:
            if site.listen_address is None:
                return [f"{port}{suffix}", f"[::]:{port}{suffix}"]
            return [f"{bracket(site.listen_address)}:{port}{suffix}"]

        return {
            "plan": self.plan,
            "site": site,
            "upstream_name": f"{self.plan.app.slug}_asgi",
            "upstream": [str(b) for b in site.upstream],
            "https": site.https,
            "acme_webroot": None if tls is None else tls.acme_webroot,
            "http_listen": listen(site.http_port),
            "https_listen": listen(site.https_port, " ssl http2"),
            "https_origin": https_origin(site),
            "reject_handshake": not has_ip_name(site),
            "hsts": site.hsts,
            "protocols": " ".join(MOZILLA_INTERMEDIATE_PROTOCOLS),
            "ciphers": MOZILLA_INTERMEDIATE_CIPHERS,
            "app_location": f"{site.root_path}/" if site.root_path else "/",
            "hashed_static_regex": HASHED_STATIC_REGEX,
            "immutable_max_age": IMMUTABLE_MAX_AGE,
            "media_csp": MEDIA_CSP,
            "health_location": internal_health_path(self.plan),
            "health_sources": HEALTH_SOURCES,
            "static_root": None if site.static_root is None else site.static_root.rstrip("/") + "/",
            "media_root": None if site.media_root is None else site.media_root.rstrip("/") + "/",
        }

    def applies(self) -> bool:
        return self.plan.site.proxy == "nginx"

    def validate(self, content: str, workdir: Path) -> None:
        nginx = self.require_tool()
        site = workdir / "site.conf"
        site.write_text(with_standin_certificates(self.plan, content, workdir, quoting.nginx), encoding="utf-8")
        conf = check_prefix(workdir, [site])
        run_tool([nginx, "-t", "-q", "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")])
