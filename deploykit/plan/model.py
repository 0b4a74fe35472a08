"""The plan's model: frozen dataclasses, nothing that reads settings.

Properties here are derived facts every output shares (``Site.https``,
``Site.hsts``, ``App.slug``...), so no target computes them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

# The site's own model (addresses, TLS, what the proxy serves) lives beside this one; re-exported.
from deploykit.plan.sitemodel import TLS as TLS
from deploykit.plan.sitemodel import Bind as Bind
from deploykit.plan.sitemodel import Site as Site
from deploykit.plan.sitemodel import bracket as bracket
from deploykit.plan.sitemodel import is_ip as is_ip

SERVERS = ("daphne", "uvicorn", "gunicorn", "granian", "hypercorn")
#: The WSGI servers split serving can put HTTP on (issue 15).
WSGI_SERVERS = ("granian", "gunicorn")
PROCESS_MANAGERS = ("systemd", "supervisor")
PROXIES = ("nginx", "apache", "caddy")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")

IN_MEMORY_BACKEND = "channels.layers.InMemoryChannelLayer"
REDIS_BACKEND = "channels_redis.core.RedisChannelLayer"
PUBSUB_BACKEND = "channels_redis.pubsub.RedisPubSubChannelLayer"
#: channels_redis's own defaults, for telling "left at default" apart.
REDIS_DEFAULT_CAPACITY = 100
REDIS_DEFAULT_GROUP_EXPIRY = 86400

#: Where the image keeps its virtualenv and the project (the Dockerfile's WORKDIR).
CONTAINER_VIRTUALENV = "/opt/venv"
CONTAINER_WORKDIR = "/app"
#: The image's unprivileged user and group: numeric, so Kubernetes can verify runAsNonRoot.
CONTAINER_UID = 10001


@dataclass(frozen=True)
class Server:
    """The ASGI server processes."""

    backend: str
    backend_reason: str
    workers: int
    processes: int
    #: Where clients (the proxy) connect, one per process; processes share one
    #: socket when the process manager owns it (supervisor fcgi-program).
    addresses: tuple[Bind, ...]
    #: What the server's argv binds: the address itself, or an inherited fd.
    listen: Bind
    proxy_headers: bool
    forwarded_allow_ips: tuple[str, ...]
    root_path: str
    graceful_timeout: int
    keepalive_timeout: int
    websocket_ping_interval: int
    websocket_ping_timeout: int
    websocket_max_size: int
    websocket_lifetime: int
    #: permessage-deflate (off by default: see plan.server._websocket_compression).
    websocket_compression: bool
    access_log: bool
    log_level: str
    log_format: str

    @property
    def address(self) -> Bind:
        return self.addresses[0]

    @property
    def total_processes(self) -> int:
        return self.workers * self.processes


@dataclass(frozen=True)
class WsgiServer:
    """The WSGI server that answers HTTP when serving is split; the ASGI server keeps the WebSockets.

    Django's ASGI handler runs every sync view through a thread hop; WSGI does
    not (issue 15). Its own service, socket and runtime directory, so either
    side restarts without touching the other.
    """

    backend: str
    #: WSGI_APPLICATION as written ("" when unset: W013 says so).
    application: str
    workers: int
    threads: int
    #: The service (systemd unit, supervisor program) and socket name: NAME-http.
    name: str
    #: Its own: systemd removes a unit's RuntimeDirectory= when the unit stops.
    runtime_directory: str
    addresses: tuple[Bind, ...]
    listen: Bind
    proxy_headers: bool
    forwarded_allow_ips: tuple[str, ...]
    root_path: str
    graceful_timeout: int
    keepalive_timeout: int
    access_log: bool
    log_level: str
    #: Its unit's IPAddressAllow= peers: as the ASGI unit's, with the trusted proxies of its own bind.
    ip_address_allow: tuple[str, ...] = ("localhost",)

    @property
    def address(self) -> Bind:
        return self.addresses[0]

    @property
    def target(self) -> str:
        """``module:attribute`` as WSGI servers take it."""
        module, _, attribute = self.application.rpartition(".")
        return f"{module}:{attribute}"


@dataclass(frozen=True)
class ProcessManager:
    kind: str
    name: str
    user: str
    #: The app's own group (its primary group under systemd).
    group: str
    virtualenv: str
    python: str
    working_directory: str
    runtime_directory: str
    env_file: str
    environment: tuple[tuple[str, str], ...]
    #: Above the server's graceful timeout, so the server finishes first.
    stop_timeout: int
    #: The peers the service may reach (systemd IPAddressAllow= with IPAddressDeny=any);
    #: ("any",) when one is a host name whose addresses cannot be known here.
    ip_address_allow: tuple[str, ...] = ("localhost",)
    #: The reverse proxy's group: the socket (and its directory) belong to it, nothing else does.
    proxy_group: str = "www-data"


@dataclass(frozen=True)
class ChannelLayer:
    kind: Literal["none", "memory", "redis", "sentinel", "pubsub", "rabbitmq", "postgres", "other"]
    backend: str
    #: Broker URLs (redis://, amqp://, postgres://...) the layer connects to.
    hosts: tuple[str, ...]
    sentinels: tuple[tuple[str, int], ...]
    master_name: str | None
    #: As the settings have them (None: the backend's default).
    capacity: int | None
    group_expiry: int | None
    #: What deploykit recommends and the ``channels`` target writes.
    recommended_capacity: int
    recommended_group_expiry: int
    #: DEPLOYKIT["REDIS_URL"]: what ``deployconfig channels`` writes, never what runs.
    redis_url: str | None = None
    #: redis-py's read timeout per Redis host as configured: None for none,
    #: "default" where the host leaves it to redis-py.
    read_timeouts: tuple[float | Literal["default"] | None, ...] = ()
    #: What the plan could not tell about a layer it does not know.
    unknown: str | None = None

    @property
    def crosses_processes(self) -> bool:
        """Whether a message sent in one server process reaches a consumer in another.

        The one rule that E002, ``runasgi`` and the default worker count share.
        """
        return self.kind not in ("none", "memory")

    @property
    def is_redis(self) -> bool:
        return self.kind in ("redis", "sentinel", "pubsub")


@dataclass(frozen=True)
class App:
    name: str
    asgi_application: str
    settings_module: str
    websocket_routes: str | None
    health_path: str | None
    base_dir: str
    #: Hosts the app itself connects to (DATABASES, MAILERS, EMAIL_HOST): the systemd
    #: unit's network allow list must admit them.
    peer_hosts: tuple[str, ...] = ()
    #: Directories the app writes besides MEDIA_ROOT (an SQLite database's folder).
    write_paths: tuple[str, ...] = ()
    #: Environment variables the settings read (INSTALL.md and the env file name them).
    environment_names: tuple[str, ...] = ()
    #: Django's own settings the checks compare the deployment with, as written.
    allowed_hosts: tuple[str, ...] = ()
    csrf_trusted_origins: tuple[str, ...] = ()
    middleware: tuple[str, ...] = ()
    #: Distributions the project's requirements.txt names (deploykit's extras count as named too);
    #: None: the project has none. INSTALL.md installs from it.
    requirements: tuple[str, ...] | None = None
    #: Whether the app serves WebSockets: WEBSOCKET_ROUTES, or channels (or daphne) installed
    #: for an asgi.py of the project's own.
    serves_websockets: bool = False
    #: STATIC_URL / MEDIA_URL names whose value is relative (Django prefixes it with the script name).
    relative_urls: tuple[str, ...] = ()
    #: ROOT_URLCONF: W014 counts the async views a WSGI server would run through async_to_sync.
    root_urlconf: str | None = None

    @property
    def asgi_target(self) -> str:
        """``module:attribute`` as ASGI servers take it."""
        module, _, attribute = self.asgi_application.rpartition(".")
        return f"{module}:{attribute}"

    @property
    def slug(self) -> str:
        """The name where only ``[A-Za-z0-9_]`` fits (nginx upstream, Apache balancer)."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Metrics:
    """The Prometheus endpoint (issue 17 item 7): counted in every server process, summed at scrape time."""

    #: The path the application answers (METRICS_PATH); the proxies keep it to this machine.
    path: str
    #: Where each server process keeps its counter file (the runtime directory's ``metrics``).
    directory: str
    #: Split serving: where the WSGI server keeps its counter files (its own runtime directory's
    #: ``metrics``), which the ASGI server sums at scrape time. None: no split, or in a container.
    wsgi_directory: str | None
    #: granian's own exporter, on this loopback port, passed through at ``path``; None: not granian.
    granian_port: int | None
    #: The namespace whose pods (Prometheus) the Kubernetes NetworkPolicy lets reach the app's port.
    prometheus_namespace: str


IMAGE_TAG_REQUIRED = (
    "the container files need the image's version: set it (or --tag), e.g. a release '1.4.2' or a commit "
    "'git-3f2c1a9'; a moving tag such as 'latest' lets a push roll nothing out and nodes run different builds"
)


@dataclass(frozen=True)
class Container:
    """The image and the cluster: what the dockerfile, compose and kubernetes targets write."""

    #: Whether ``deployconfig all`` writes the container files (DEPLOYKIT["CONTAINERS"]).
    enabled: bool
    #: Kubernetes object and Compose service names: the app name as a DNS label.
    name: str
    image: str
    #: None when unset: the plan refuses that with CONTAINERS, a target that shows the reference too.
    tag: str | None
    python_image: str
    requirements: tuple[str, ...]
    port: int
    namespace: str
    #: The namespace whose pods (the ingress controller) the NetworkPolicy admits.
    ingress_namespace: str
    replicas: int
    max_replicas: int
    cpu_request: str
    cpu_limit: str | None
    memory_request: str
    memory_limit: str | None
    #: The plan's sections as they run inside the image: the image's
    #: virtualenv and working directory, a TCP bind on ``port``, static and
    #: media paths under the working directory.
    server: Server
    process_manager: ProcessManager
    site: Site
    app: App
    #: Split serving: the WSGI server in the image, on ``port`` too (its own container). None otherwise.
    wsgi: WsgiServer | None = None
    #: The metrics as the image runs them (their directory in the writable /tmp).
    metrics: Metrics | None = None

    @property
    def reference(self) -> str:
        if self.tag is None:
            from deploykit.exceptions import SpecError  # the model imports nothing else of deploykit

            raise SpecError('DEPLOYKIT["IMAGE_TAG"]', None, IMAGE_TAG_REQUIRED)
        return f"{self.image}:{self.tag}"


@dataclass(frozen=True)
class Plan:
    site: Site
    server: Server
    process_manager: ProcessManager
    channel_layer: ChannelLayer
    app: App
    container: Container
    #: Split serving: HTTP through this WSGI server (None: the ASGI server serves everything).
    wsgi: WsgiServer | None = None
    #: Choices made for the user, printed by the commands (never silent).
    notes: tuple[str, ...] = field(default=())
    #: The Prometheus endpoint (None: METRICS_PATH unset, nothing counted).
    metrics: Metrics | None = None

    def in_container(self) -> Plan:
        """The plan as it runs inside the image (what the Dockerfile's CMD and the pods run).

        The image's CMD runs the ASGI server; with split serving, the WSGI server is ``container.wsgi``,
        which Compose and Kubernetes run as a second service from the same image.
        """
        c = self.container
        return replace(
            self,
            site=c.site,
            app=c.app,
            server=c.server,
            process_manager=c.process_manager,
            wsgi=None,
            metrics=c.metrics,
        )
