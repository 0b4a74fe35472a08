"""The plan's model: frozen dataclasses, nothing that reads settings.

Properties here are derived facts every output shares (``Site.https``,
``Site.hsts``, ``App.slug``...), so no target computes them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

# The site's own model (addresses, TLS, what the proxy serves) lives beside this one; re-exported.
from deploykit.plan.processmodel import Processes as Processes
from deploykit.plan.sitemodel import TLS as TLS
from deploykit.plan.sitemodel import Bind as Bind
from deploykit.plan.sitemodel import Site as Site
from deploykit.plan.sitemodel import bracket as bracket
from deploykit.plan.sitemodel import is_ip as is_ip

if TYPE_CHECKING:  # the model imports nothing of deploykit at run time
    from deploykit.plan.cluster import ClusterEntry

SERVERS = ("daphne", "uvicorn", "gunicorn", "granian", "hypercorn")
#: The WSGI servers split serving can put HTTP on (issue 15).
WSGI_SERVERS = ("granian", "gunicorn")
#: The servers whose command line takes a listening socket they inherit (systemd socket activation,
#: supervisor's fcgi-program): uvicorn and daphne ``--fd N``, gunicorn and hypercorn ``--bind fd://N``.
#: granian (2.8) binds its own socket only (``--host``/``--port``, ``--uds``): no fd option, no LISTEN_FDS.
INHERITED_SOCKET_SERVERS = ("daphne", "uvicorn", "gunicorn", "hypercorn")
#: Of those, the ones that serve an inherited unix socket: daphne's --fd is twisted's "fd:fileno=N"
#: endpoint, which adopts the socket as TCP (a unix one logs "Listening on TCP address" and hangs).
INHERITED_UNIX_SOCKET_SERVERS = ("uvicorn", "gunicorn", "hypercorn")
#: The servers that recycle a worker after a number of requests (MAX_REQUESTS): daphne has no such
#: option, and granian recycles by time (--workers-lifetime) or memory (--workers-max-rss), not by count.
RECYCLING_SERVERS = ("uvicorn", "gunicorn", "hypercorn")
#: Where systemd passes a socket unit's first socket (SD_LISTEN_FDS_START, sd_listen_fds(3)).
SYSTEMD_LISTEN_FD = 3
PROCESS_MANAGERS = ("systemd", "supervisor")
PROXIES = ("nginx", "apache", "caddy")
#: The platforms (PaaS) whose files ``deployconfig all`` writes instead of a host's (issue 17 item 5).
PLATFORMS = ("heroku", "render", "fly")
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
#: Where the server runs in the image: /tmp is its only writable place (the root filesystem is read-only;
#: compose mounts a tmpfs there, Kubernetes an emptyDir). The drain file lives there.
CONTAINER_RUNTIME_DIRECTORY = "/tmp"
#: The image's unprivileged user and group: numeric, so Kubernetes can verify runAsNonRoot.
CONTAINER_UID = 10001


def takes_inherited_socket(backend: str, address: Bind) -> bool:
    """Whether ``backend`` can serve ``address`` from a socket it inherits (socket activation, supervisor)."""
    return backend in (INHERITED_UNIX_SOCKET_SERVERS if address.kind == "unix" else INHERITED_SOCKET_SERVERS)


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
    #: BACKLOG: the listen queue (connections waiting for an accept) of every listen() on the socket.
    backlog: int
    websocket_ping_interval: int
    websocket_ping_timeout: int
    websocket_max_size: int
    websocket_lifetime: int
    #: permessage-deflate (off by default: see plan.server._websocket_compression).
    websocket_compression: bool
    access_log: bool
    log_level: str
    log_format: str
    #: MAX_REQUESTS: a worker is replaced after this many requests, plus up to the jitter (None: never).
    max_requests: int | None = None
    max_requests_jitter: int = 0
    #: Seconds over which a draining process closes its WebSockets, each at a random time (0: drain off,
    #: every WebSocket closes at once when the server stops). See :mod:`deploykit.drain`.
    drain_timeout: int = 0
    #: The file whose appearance drains every process of this server (None: drain off); in the runtime
    #: directory, so systemd empties it at each start; /tmp in containers (their only writable place).
    drain_file: str | None = None

    @property
    def address(self) -> Bind:
        return self.addresses[0]

    @property
    def takes_inherited_socket(self) -> bool:
        return takes_inherited_socket(self.backend, self.address)

    @property
    def drains_on_stop(self) -> bool:
        """Whether stopping the service drains it first (systemd ExecStop=, Kubernetes preStop).

        Not when it takes an inherited socket: what arrives during a restart waits in that socket for
        the next server, and a drain would answer those handshakes 403 with no other server to take them.
        """
        return self.drain_file is not None and self.listen.kind != "fd"

    @property
    def recycles(self) -> bool:
        """Whether MAX_REQUESTS reaches the server (daphne and granian count no requests)."""
        return self.max_requests is not None and self.backend in RECYCLING_SERVERS

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
    backlog: int
    access_log: bool
    log_level: str
    #: Its own drain file (its readiness answers 503 once it exists; it has no WebSockets to close).
    drain_file: str | None = None
    #: Its unit's IPAddressAllow= peers: as the ASGI unit's, with the trusted proxies of its own bind.
    ip_address_allow: tuple[str, ...] = ("localhost",)
    #: MAX_REQUESTS and its jitter, as the ASGI side's.
    max_requests: int | None = None
    max_requests_jitter: int = 0

    @property
    def address(self) -> Bind:
        return self.addresses[0]

    @property
    def recycles(self) -> bool:
        return self.max_requests is not None and self.backend in RECYCLING_SERVERS

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
    #: redis-py's connection pool size per Redis host as configured ("default": left to redis-py).
    pool_sizes: tuple[int | Literal["default"], ...] = ()
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
    #: How traffic enters the cluster: the Ingress's class, the Gateway an HTTPRoute attaches to, and
    #: the namespace whose pods (the controller's, the Gateway's data plane) the NetworkPolicy admits.
    entry: ClusterEntry
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
    #: Background processes, release and timers as they run from the image (argv with its virtualenv).
    processes: Processes = field(default_factory=Processes)

    @property
    def ingress_namespace(self) -> str:
        """The namespace whose pods the NetworkPolicy admits (the ingress controller's, the Gateway's)."""
        return self.entry.ingress_namespace

    #: The metrics as the image runs them (their directory in the writable /tmp).
    metrics: Metrics | None = None

    @property
    def reference(self) -> str:
        if self.tag is None:
            from deploykit.exceptions import SpecError  # the model imports nothing else of deploykit

            raise SpecError('DEPLOYKIT["IMAGE_TAG"]', None, IMAGE_TAG_REQUIRED)
        return f"{self.image}:{self.tag}"


@dataclass(frozen=True)
class Platform:
    """The PaaS the app runs on (PLATFORM): its router is the proxy, it hands the port in $PORT.

    Its release, background processes and timers are the image's (``container.processes``): built
    for a read-only code tree (state in /tmp) with static files collected at build time, which is
    how Heroku's and Render's builds and Fly's image work too.
    """

    #: heroku, render, fly; None: a host of ours (nginx, systemd...).
    kind: str | None = None
    #: Whom the server trusts for X-Forwarded-*: the router's networks (FORWARDED_ALLOW_IPS narrows it).
    forwarded_allow_ips: tuple[str, ...] = ()
    #: ``--workers`` where the platform sets no WEB_CONCURRENCY; None: no ``--workers`` at all
    #: (daphne has none; a channel layer within one process must stay one process).
    web_workers: int | None = None
    #: DEPLOYKIT keys set to this host's paths that runasgi uses on the platform too (it chdirs to the
    #: working directory and execs the virtualenv's python): W025 names them.
    host_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Slot:
    """One of the two instances of the app (issue 16): its own service, sockets and runtime directory,
    so it starts and stops without touching the other."""

    name: str
    #: The systemd unit / supervisor program / Compose service: NAME-SLOT.
    service: str
    runtime_directory: str
    server: Server
    wsgi: WsgiServer | None = None

    @property
    def services(self) -> tuple[str, ...]:
        """Every service of the slot: the ASGI server's, then the WSGI server's (split serving)."""
        return (self.service,) if self.wsgi is None else (self.service, self.wsgi.name)


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
    platform: Platform = field(default=Platform())
    #: What runs besides the web servers: background processes, the release step, timers (issue 17).
    processes: Processes = field(default_factory=Processes)
    #: Choices made for the user, printed by the commands (never silent).
    notes: tuple[str, ...] = field(default=())
    #: Two slots and a switch (DEPLOYKIT["SLOTS"]); () when off.
    slots: tuple[Slot, ...] = ()
    #: The file the proxy includes for its upstream, which ``manage.py redeploy`` rewrites (slots only).
    upstream_file: str | None = None

    def slot(self, name: str) -> Slot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise KeyError(name)

    def for_slot(self, name: str) -> Plan:
        """The plan as one slot runs it: that slot's servers, service name and runtime directory; the proxy's
        upstream is the slot's (unless UPSTREAM pins it: E007)."""
        slot = self.slot(name)
        pm = replace(self.process_manager, name=slot.service, runtime_directory=slot.runtime_directory)
        upstream = self.site.upstream if self.site.upstream != self.server.addresses else slot.server.addresses
        return replace(
            self,
            server=slot.server,
            wsgi=slot.wsgi,
            process_manager=pm,
            site=replace(self.site, upstream=upstream),
            slots=(),
        )

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
            processes=c.processes,
            metrics=c.metrics,
        )
