from __future__ import annotations

from pathlib import Path

from deploykit import quoting
from deploykit.exceptions import SpecError
from deploykit.plan import Bind, Plan, bracket
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool, with_standin_certificates
from deploykit.targets.upstream import SlotUpstream
from deploykit.targets.web import (
    CATCH_ALL_NAME,
    HASHED_STATIC_REGEX,
    HEALTH_SOURCES,
    IMMUTABLE_MAX_AGE,
    MEDIA_CSP,
    MOZILLA_GUIDELINES,
    MOZILLA_INTERMEDIATE_CIPHERS,
    MOZILLA_INTERMEDIATE_CURVES,
    https_origin,
    internal_health_path,
    internal_metrics_path,
)

#: The modules the site needs (a2enmod names); INSTALL.md enables them.
MODULES = (
    "proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "slotmem_shm", "headers", "alias", "rewrite", "ssl",
    "authz_host", "socache_shmcb", "http2",
)  # fmt: skip
#: Debian's layout: https://wiki.debian.org/Apache
MODULE_DIR = "/usr/lib/apache2/modules"
_BASE_MODULES = ("mpm_event", "authz_core", "mime")

_CHECK_CONF = """\
ServerRoot {root}
ServerName localhost
PidFile {root}/apache.pid
ErrorLog {root}/error.log
DefaultRuntimeDir {root}
Mutex file:{root}
{modules}
Include {site}
"""


def backend_url(bind: Bind, path: str) -> str:
    """mod_proxy's URL for one server: ``unix:/path|http://localhost/path`` or ``http://host:port/path``."""
    if bind.kind == "unix":
        return f"unix:{bind.path}|http://localhost{path}"
    return f"http://{bind}{path}"


def modules(plan: Plan) -> tuple[str, ...]:
    """What the plan's site needs enabled: mod_remoteip only behind a TRUSTED_PROXIES edge."""
    return (*MODULES, "remoteip") if plan.site.trusted_proxies else MODULES


def _edge_scheme(trusted: tuple[str, ...]) -> str | None:
    """An ap_expr true when the peer (the connection's, not the client mod_remoteip found) is a trusted
    edge that sent X-Forwarded-Proto http or https: the one case the site keeps the header it got."""
    if not trusted:
        return None
    peers = " || ".join(f"%{{CONN_REMOTE_ADDR}} -ipmatch '{network}'" for network in trusted)
    return f"({peers}) && %{{HTTP:X-Forwarded-Proto}} in {{'http', 'https'}}"


def check_conf(root: Path, site: Path, enabled: tuple[str, ...] = MODULES) -> Path:
    """A minimal httpd.conf in ``root`` that loads ``enabled`` and includes ``site``; ``apachectl -t -f`` it."""
    modules = "\n".join(f"LoadModule {name}_module {MODULE_DIR}/mod_{name}.so" for name in (*_BASE_MODULES, *enabled))
    conf = root / "httpd.conf"
    conf.write_text(_CHECK_CONF.format(root=root, modules=modules, site=site), encoding="utf-8")
    return conf


class Apache(SlotUpstream, Target):
    name = "apache"
    description = "Apache site: mod_proxy with upgrade=websocket, forwarded headers, static Alias, TLS"
    template = "deploykit/apache/site.conf"
    file_name = "apache.conf"
    tool = "apachectl"
    upstream_template = "deploykit/apache/upstream-file.conf"

    def context(self) -> dict[str, object]:
        site = self.plan.site
        if ":" in site.canonical_name:
            # httpd refuses an IPv6 ServerName ("Invalid ServerName"), bracketed or not; ServerAlias takes it.
            raise SpecError(
                'DEPLOYKIT["SERVER_NAMES"]', site.server_names, "Apache needs a host name or IPv4 address among them"
            )
        tls = site.tls
        path = f"{site.root_path}/" if site.root_path else "/"
        balanced = len(site.upstream) > 1
        balancer = f"balancer://{self.plan.app.slug}"
        host = bracket(site.listen_address or "*")
        proxy_url = f"{balancer}{path}" if balanced else backend_url(site.upstream[0], path)
        wsgi = self.plan.wsgi
        metrics = internal_metrics_path(self.plan)
        # METRICS_PATH goes to the ASGI server, which answers it (with split serving too).
        metrics_url = (
            None
            if metrics is None
            else (f"{balancer}{metrics}" if balanced else backend_url(site.upstream[0], metrics))
        )
        split: dict[str, object] = {}
        if wsgi is not None:
            split = {
                "wsgi_url": backend_url(wsgi.address, path),
                # The balancer's members carry upgrade=websocket already.
                "websocket_worker": None if balanced else backend_url(site.upstream[0], "/"),
                "websocket_pattern": f"^{path}(.*)$",
                "websocket_target": f"{proxy_url}$1",
            }
        return {
            **split,
            "plan": self.plan,
            "site": site,
            # Two slots: the Proxy blocks and ProxyPass lines live in this file (redeploy rewrites it).
            "upstream_file": self.plan.upstream_file,
            "https": site.https,
            "acme_webroot": None if tls is None else tls.acme_webroot,
            "http_vhost": f"{host}:{site.http_port}",
            "https_vhost": f"{host}:{site.https_port}",
            # ports.conf (Debian) listens on 80 and 443 already; a second Listen would fail.
            # On LISTEN_ADDRESS only, as nginx and Caddy do (a bare port binds every address).
            "listen": [
                f"{bracket(site.listen_address)}:{p}" if site.listen_address else str(p)
                for p, default in ((site.http_port, 80), (site.https_port, 443))
                if p != default
            ],
            "listen_default_ports": bool({80, 443} & {site.http_port, site.https_port}),
            "app_path": path,
            "balancer": balancer if balanced else None,
            "members": [backend_url(b, "") for b in site.upstream],
            "proxy_url": proxy_url,
            "sticky": site.sticky_sessions and balanced,
            "https_redirect": https_origin(site) + "%{REQUEST_URI}",
            # ServerName takes one plain name (not a wildcard): the canonical one; ServerAlias the rest.
            "server_aliases": [bracket(name) for name in site.server_names if name != site.canonical_name],
            "catch_all_name": CATCH_ALL_NAME,
            "hsts": site.hsts,
            "ciphers": MOZILLA_INTERMEDIATE_CIPHERS,
            "curves": ":".join(MOZILLA_INTERMEDIATE_CURVES),
            "guidelines": MOZILLA_GUIDELINES,
            "hashed_static_regex": HASHED_STATIC_REGEX,
            "immutable_max_age": IMMUTABLE_MAX_AGE,
            "media_csp": MEDIA_CSP,
            "health_location": internal_health_path(self.plan),
            "metrics_location": metrics,
            "metrics_url": metrics_url,
            "health_sources": HEALTH_SOURCES,
            "timeout": site.proxy_read_timeout,
            "modules": modules(self.plan),
            "edge_scheme": _edge_scheme(site.trusted_proxies),
        }

    def applies(self) -> bool:
        return self.plan.site.proxy == "apache"

    def upstream_quote(self, path: str) -> str:
        return quoting.apache(path)

    def validate(self, content: str, workdir: Path) -> None:
        if self.plan.slots:
            self.validate_with_upstream(content, self.upstream_text(self.plan.slots[0].name), workdir)
        else:
            self._validate(content, workdir)

    def _validate(self, content: str, workdir: Path) -> None:
        apachectl = self.require_tool()
        site = workdir / "site.conf"
        site.write_text(with_standin_certificates(self.plan, content, workdir, quoting.apache), encoding="utf-8")
        conf = check_conf(workdir, site, modules(self.plan))
        run_tool([apachectl, "-t", "-d", str(workdir), "-f", str(conf)])
