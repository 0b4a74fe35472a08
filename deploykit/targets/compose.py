"""Docker Compose: the app (scalable), Redis, and nginx with the plan's nginx site.

nginx gets the nginx target's own file, rendered from the container plan with
the upstream ``app:PORT``: Compose's DNS answers the service name with every
replica's address, and nginx's upstream balances over all of them, asking
again every few seconds (``resolve``) so that ``--scale`` is picked up.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from deploykit import processes
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
from deploykit.targets.processes import KIND_NAMES, STOP_REASONS
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
#: Two slots (issue 16): the folder (beside the Compose file) holding the nginx upstream file, mounted as a
#: folder: a file bind mount keeps the old inode when the file is replaced (redeploy writes atomically).
UPSTREAM_FOLDER = "nginx-upstream"
UPSTREAM_MOUNT = "/etc/nginx/upstream"


def split_container_plan(plan: Plan) -> Plan:
    """The container plan, keeping the split: the WSGI server of the image (None without a split)."""
    return replace(container_plan(plan), wsgi=plan.container.wsgi)


def slot_service(service: str, slot: str | None) -> str:
    """A Compose service's name in ``slot`` (two slots: one service per slot, e.g. ``app-blue``)."""
    return service if slot is None else f"{service}-{slot}"


def compose_nginx_plan(plan: Plan, slot: str | None = None) -> Plan:
    """The container plan with nginx's view of it: the app service(s) (of ``slot``) as upstream, IPv4 listen."""
    inside = split_container_plan(plan)
    if plan.upstream_file is not None:
        inside = replace(inside, upstream_file=f"{UPSTREAM_MOUNT}/{plan.app.name}-upstream.conf")
    port = plan.container.port
    wsgi = inside.wsgi
    if slot is None and plan.slots:
        slot = plan.slots[0].name
    site = replace(
        inside.site,
        upstream=(Bind("tcp", host=slot_service(APP_SERVICE if wsgi is None else WEBSOCKET_SERVICE, slot), port=port),),
        # Docker networks are IPv4-only unless enabled: `listen [::]:80` would fail.
        listen_address=inside.site.listen_address or "0.0.0.0",
    )
    if wsgi is not None:
        # nginx reaches the WSGI server by its service name: the map on $http_upgrade picks the upstream.
        wsgi = replace(wsgi, addresses=(Bind("tcp", host=slot_service(HTTP_SERVICE, slot), port=port),))
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


class ComposeSlotNginx(ComposeNginx):
    """The stack's nginx site with two slots: the upstream file names the slot's services."""

    def __init__(self, plan: Plan) -> None:
        # ``plan`` is the host plan: each slot's upstream is that slot's services.
        super().__init__(compose_nginx_plan(plan), version=NGINX_IMAGE_VERSION)
        self.host_plan = plan

    def slot_target(self, slot: str) -> ComposeNginx:
        return ComposeNginx(compose_nginx_plan(self.host_plan, slot), version=NGINX_IMAGE_VERSION)


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
        if plan.slots:
            # Two slots (issue 16): every app service once per slot; nginx's upstream file names the live one.
            services = [
                {**service, "name": slot_service(str(service["name"]), slot.name), "slot": slot.name}
                for slot in plan.slots
                for service in services
            ]
        ports = [plan.site.http_port] + ([plan.site.https_port] if tls and tls.certificate else [])
        release = inside.processes.release_process
        # Certificates and the ACME webroot are host files, mounted at the same paths.
        host_dirs = (
            [] if tls is None else [d for p in (tls.certificate, tls.certificate_key) if p for d in certificate_dirs(p)]
        )
        return {
            "plan": plan,
            "container": plan.container,
            "app_service": APP_SERVICE,
            "app_services": services,
            # The nginx services the stack waits for: the live slot's (the first, as first installed).
            "nginx_depends": [
                s["name"] for s in services if s.get("slot") in (None, *[t.name for t in plan.slots[:1]])
            ],
            "upstream_folder": UPSTREAM_FOLDER if plan.slots else None,
            "upstream_mount": UPSTREAM_MOUNT,
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
            # Issue 17: the release before the app, background processes, timers (a note: Compose has none).
            "process_environment": sorted(common.items()),
            "release": None
            if release is None
            else {
                "name": release.unit,
                "command": processes.argv(inside, release),
                "steps": ", ".join(" ".join(s) for s in inside.processes.release),
            },
            "background": [
                {
                    "process": b,
                    "command": processes.argv(inside, b),
                    "what": f"{KIND_NAMES[b.kind]}.",
                    "stop_why": STOP_REASONS[b.kind],
                }
                for b in inside.processes.background
            ],
            "timers": [(t, processes.argv(inside, t)) for t in inside.processes.timers],
        }

    def nginx_target(self) -> ComposeNginx:
        if self.plan.slots:
            return ComposeSlotNginx(self.plan)
        return ComposeNginx(compose_nginx_plan(self.plan), version=NGINX_IMAGE_VERSION)

    def nginx_site(self) -> str:
        return self.nginx_target().render()

    def upstream_files(self) -> list[RenderedFile]:
        """Two slots: the nginx upstream file, in its own folder (mounted as a folder)."""
        return [replace(f, name=f"{UPSTREAM_FOLDER}/{f.name}") for f in self.nginx_target().upstream_rendered()]

    def files(self) -> list[RenderedFile]:
        return [
            RenderedFile(self.filename, self.render()),
            RenderedFile(NGINX_FILENAME, self.nginx_site()),
            *self.upstream_files(),
        ]

    def applies(self) -> bool:
        return self.plan.container.enabled

    def validate(self, content: str, workdir: Path) -> None:
        compose = self.require_tool()
        path = workdir / self.filename
        path.write_text(content, encoding="utf-8")
        # `config` resolves the env file: an empty one stands in for the user's secrets.
        (workdir / f"{self.plan.app.name}.env").touch()
        (workdir / NGINX_FILENAME).write_text(self.nginx_site(), encoding="utf-8")
        for upstream in self.upstream_files():
            (workdir / upstream.name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / upstream.name).write_text(upstream.content, encoding="utf-8")
        run_tool([compose, "--project-directory", str(workdir), "-f", str(path), "config", "--quiet"], cwd=workdir)
