"""Docker Compose: the app (scalable), Redis, and nginx with the plan's nginx site.

nginx gets the nginx target's own file, rendered from the container plan with
the upstream ``app:PORT``: Compose's DNS answers the service name with every
replica's address, and nginx's upstream balances over all of them, asking
again every few seconds (``resolve``) so that ``--scale`` is picked up.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from deploykit.plan import CONTAINER_UID, Bind, Plan
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from deploykit.targets.base import RenderedFile, Target
from deploykit.targets.docker import (
    PROBE_INTERVAL,
    PROBE_TIMEOUT,
    START_PERIOD,
    container_plan,
    readiness_command,
)
from deploykit.targets.env import contract_environment
from deploykit.targets.nginx import Nginx
from deploykit.targets.tooling import run_tool

#: Compose service names; "app" is also the nginx upstream's host name.
APP_SERVICE = "app"
#: Split serving: the two app services (the nginx upstreams' host names), each restartable alone.
HTTP_SERVICE = "http"
WEBSOCKET_SERVICE = "websocket"
REDIS_SERVICE = "redis"
#: Pinned images for the other services (a template override can change them).
NGINX_IMAGE = "nginx:1.28-alpine"
#: The image's nginx loads the site, not one installed here: its version picks the http2 form.
NGINX_IMAGE_VERSION = tuple(int(part) for part in NGINX_IMAGE.split(":")[1].split("-")[0].split("."))
REDIS_IMAGE = "redis:7.4-alpine"
#: Mounted over the nginx image's default site (included inside http{}).
NGINX_SITE = "/etc/nginx/conf.d/default.conf"
NGINX_FILENAME = "nginx-compose.conf"
LETSENCRYPT = "/etc/letsencrypt"


def split_container_plan(plan: Plan) -> Plan:
    """The container plan, keeping the split: the WSGI server of the image (None without a split)."""
    return replace(container_plan(plan), wsgi=plan.container.wsgi)


def compose_nginx_plan(plan: Plan) -> Plan:
    """The container plan with nginx's view of it: the app service(s) as upstream, IPv4 listen."""
    inside = split_container_plan(plan)
    port = plan.container.port
    wsgi = inside.wsgi
    site = replace(
        inside.site,
        upstream=(Bind("tcp", host=APP_SERVICE if wsgi is None else WEBSOCKET_SERVICE, port=port),),
        # Docker networks are IPv4-only unless enabled: `listen [::]:80` would fail.
        listen_address=inside.site.listen_address or "0.0.0.0",
    )
    if wsgi is not None:
        # nginx reaches the WSGI server by its service name: the map on $http_upgrade picks the upstream.
        wsgi = replace(wsgi, addresses=(Bind("tcp", host=HTTP_SERVICE, port=port),))
    return replace(inside, site=site, wsgi=wsgi)


def certificate_dirs(path: str) -> list[str]:
    """The host directories to mount for a certificate file: its lineage's, nothing more.

    Directories, not the file: a file bind mount keeps the old inode after
    renewal. certbot's live/NAME/*.pem are links into ../../archive/NAME/
    (https://eff-certbot.readthedocs.io/en/stable/using.html#where-are-my-certificates),
    so live/NAME and archive/NAME go in, at the same paths, and the links
    resolve inside the container. Not all of /etc/letsencrypt: it holds every
    other site's private key and the ACME account key.
    """
    live = LETSENCRYPT + "/live/"
    if path.startswith(live) and path.count("/") == live.count("/") + 1:
        lineage = path[len(live) :].split("/", 1)[0]
        return [f"{live}{lineage}", f"{LETSENCRYPT}/archive/{lineage}"]
    return [path.rsplit("/", 1)[0] or "/"]


def nginx_image_version() -> tuple[int, ...]:
    """The nginx release of :data:`NGINX_IMAGE` (its tag), which decides the directives the site may use."""
    return tuple(int(part) for part in NGINX_IMAGE.split(":", 1)[1].split("-", 1)[0].split("."))


#: Upstream servers with `resolve` (re-resolved while nginx runs) are in open-source nginx from 1.27.3 on
#: (https://nginx.org/en/docs/http/ngx_http_upstream_module.html#resolve); Debian 12's nginx is 1.22.
RESOLVE_SINCE = (1, 27, 3)
#: Docker's embedded DNS server on user-defined networks (Compose's default network is one):
#: https://docs.docker.com/engine/network/#dns-services
DOCKER_RESOLVER = "127.0.0.11"
#: Seconds nginx keeps an answer: a replica added by `--scale` gets traffic within this.
RESOLVER_VALID = 10


class ComposeNginx(Nginx):
    """The nginx target's site as the Compose stack's nginx container runs it."""

    def context(self) -> dict[str, object]:
        # `resolve` needs the image's nginx: NGINX_IMAGE stays at RESOLVE_SINCE or later (a test holds it there).
        return {**super().context(), "upstream_resolver": DOCKER_RESOLVER, "resolver_valid": RESOLVER_VALID}


class Compose(Target):
    name = "compose"
    description = "Docker Compose: app (scale with --scale app=N), Redis, nginx with the generated site, volumes"
    template = "deploykit/compose/docker-compose.yml"
    file_name = "docker-compose.yml"
    tool = "docker-compose"

    def context(self) -> dict[str, object]:
        plan = self.plan
        inside = container_plan(plan)
        tls = plan.site.tls
        environment = {"DJANGO_SETTINGS_MODULE": plan.app.settings_module}
        # The settings must read REDIS_URL (testproject.production does).
        environment["REDIS_URL"] = f"redis://{REDIS_SERVICE}:6379/0"
        environment.update(plan.process_manager.environment)
        common = dict(environment)
        environment.update(contract_environment(inside))
        healthcheck = ["CMD", *readiness_command(plan)]
        services: list[dict[str, object]] = [
            {"name": APP_SERVICE, "command": None, "environment": sorted(environment.items()), "serves": None}
        ]
        if plan.container.wsgi is not None:
            wsgi = get_wsgi_backend(split_container_plan(plan))
            http_environment = sorted({**common, **wsgi.environment()}.items())
            services = [
                {**services[0], "name": WEBSOCKET_SERVICE, "serves": "WebSockets (the image's CMD: the ASGI server)"},
                {"name": HTTP_SERVICE, "command": wsgi.argv(), "environment": http_environment, "serves": "HTTP"},
            ]
        ports = [plan.site.http_port] + ([plan.site.https_port] if tls and tls.certificate else [])
        # Certificates and the ACME webroot are host files, mounted at the same paths.
        host_dirs = (
            [] if tls is None else [d for p in (tls.certificate, tls.certificate_key) if p for d in certificate_dirs(p)]
        )
        return {
            "plan": plan,
            "container": plan.container,
            "app_service": APP_SERVICE,
            "app_services": services,
            "redis_service": REDIS_SERVICE,
            "nginx_image": NGINX_IMAGE,
            "redis_image": REDIS_IMAGE,
            "nginx_site": NGINX_SITE,
            "nginx_filename": NGINX_FILENAME,
            "env_file": f"{plan.app.name}.env",
            "environment": sorted(environment.items()),
            "healthcheck": healthcheck,
            "probe_interval": PROBE_INTERVAL,
            "probe_timeout": PROBE_TIMEOUT,
            "start_period": START_PERIOD,
            "stop_timeout": plan.container.process_manager.stop_timeout,
            # Compose has no stop hook: the header shows the drain to run first, in the container (its environment).
            "drain_argv": get_backend(plan.in_container()).drain_argv(),
            "drain_timeout": plan.container.server.drain_timeout,
            "static_root": inside.site.static_root,
            "media_root": inside.site.media_root,
            "ports": ports,
            "host_dirs": list(dict.fromkeys(host_dirs)),
            "acme_webroot": None if tls is None else tls.acme_webroot,
            "uid": CONTAINER_UID,
            "collectstatic": [plan.container.process_manager.python, "-m", "django", "collectstatic", "--noinput"],
        }

    def nginx_site(self) -> str:
        return ComposeNginx(compose_nginx_plan(self.plan), version=NGINX_IMAGE_VERSION).render()

    def files(self) -> list[RenderedFile]:
        return [RenderedFile(self.filename, self.render()), RenderedFile(NGINX_FILENAME, self.nginx_site())]

    def applies(self) -> bool:
        return self.plan.container.enabled

    def validate(self, content: str, workdir: Path) -> None:
        compose = self.require_tool()
        path = workdir / self.filename
        path.write_text(content, encoding="utf-8")
        # `config` resolves the env file: an empty one stands in for the user's secrets.
        (workdir / f"{self.plan.app.name}.env").touch()
        (workdir / NGINX_FILENAME).write_text(self.nginx_site(), encoding="utf-8")
        run_tool([compose, "--project-directory", str(workdir), "-f", str(path), "config", "--quiet"], cwd=workdir)
