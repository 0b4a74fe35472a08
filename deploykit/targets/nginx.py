from __future__ import annotations

import os
from pathlib import Path

from deploykit import quoting
from deploykit.plan import Plan
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool, with_standin_certificates

#: https://ssl-config.mozilla.org/#server=nginx&config=intermediate (guidelines 5.7)
MOZILLA_INTERMEDIATE_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
#: ManifestStaticFilesStorage names files name.<12 hex>.ext: those never change.
HASHED_STATIC_REGEX = r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$"
#: A year, the longest Cache-Control lifetime browsers honour in practice.
IMMUTABLE_MAX_AGE = 31536000

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


def hsts_value(plan: Plan) -> str | None:
    """The Strict-Transport-Security value matching SECURE_HSTS_*, or None without TLS or HSTS."""
    site = plan.site
    if site.tls is None or site.tls.certificate is None or site.hsts_seconds <= 0:
        return None
    value = f"max-age={site.hsts_seconds}"
    if site.hsts_include_subdomains:
        value += "; includeSubDomains"
    if site.hsts_preload:
        value += "; preload"
    return value


def port_suffix(port: int, default: int) -> str:
    return "" if port == default else f":{port}"


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
    filename = "nginx.conf"
    tool = "nginx"

    def context(self) -> dict[str, object]:
        site = self.plan.site
        tls = site.tls

        def listen(port: int, suffix: str = "") -> list[str]:
            if site.listen_address is None:
                return [f"{port}{suffix}", f"[::]:{port}{suffix}"]
            host = f"[{site.listen_address}]" if ":" in site.listen_address else site.listen_address
            return [f"{host}:{port}{suffix}"]

        return {
            "plan": self.plan,
            "site": site,
            "upstream_name": f"{self.plan.app.name.replace('-', '_')}_asgi",
            "upstream": [str(b) for b in site.upstream],
            "https": tls is not None and tls.certificate is not None,
            "acme_webroot": None if tls is None else tls.acme_webroot,
            "http_listen": listen(site.http_port),
            "https_listen": listen(site.https_port, " ssl http2"),
            "https_port_suffix": port_suffix(site.https_port, 443),
            "hsts": hsts_value(self.plan),
            "protocols": " ".join(MOZILLA_INTERMEDIATE_PROTOCOLS),
            "ciphers": MOZILLA_INTERMEDIATE_CIPHERS,
            "app_location": f"{site.root_path}/" if site.root_path else "/",
            "hashed_static_regex": HASHED_STATIC_REGEX,
            "immutable_max_age": IMMUTABLE_MAX_AGE,
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
