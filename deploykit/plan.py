"""The plan: one immutable, validated description of the deployment.

:func:`build_plan` reads settings (through :mod:`deploykit.conf`) and
command-line overrides, validates every value once, and returns a
:class:`Plan`. Everything downstream (config targets, server backends, system
checks) is a pure function of the plan and never reads settings again, so the
socket nginx connects to is by construction the socket the server binds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from deploykit import quoting
from deploykit import validators as v
from deploykit.conf import django_setting, get_config, setting_is_set
from deploykit.exceptions import SpecError

SERVERS = ("daphne", "uvicorn", "gunicorn", "granian", "hypercorn")
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


@dataclass(frozen=True)
class Bind:
    """Where a socket is: a unix socket path, a TCP host and port, or an inherited fd."""

    kind: Literal["unix", "tcp", "fd"]
    path: str = ""
    host: str = ""
    port: int = 0
    fd: int = -1

    @property
    def is_loopback(self) -> bool:
        return self.kind != "tcp" or self.host in ("127.0.0.1", "::1", "localhost")

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class TLS:
    certificate: str | None = None
    certificate_key: str | None = None
    acme_webroot: str | None = None

    @property
    def mode(self) -> Literal["certificate", "acme"]:
        return "certificate" if self.certificate else "acme"


@dataclass(frozen=True)
class Site:
    """What the reverse proxy serves."""

    proxy: str
    server_names: tuple[str, ...]
    listen_address: str | None
    http_port: int
    https_port: int
    tls: TLS | None
    root_path: str
    static_url: str | None
    static_root: str | None
    media_url: str | None
    media_root: str | None
    max_body_size: int
    proxy_read_timeout: int
    hsts_seconds: int
    hsts_include_subdomains: bool
    hsts_preload: bool
    proxy_ssl_header: tuple[str, str] | None
    upstream: tuple[Bind, ...]
    sticky_sessions: bool


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
    #: permessage-deflate (off by default: see _websocket_compression).
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
class ProcessManager:
    kind: str
    name: str
    user: str
    group: str
    virtualenv: str
    python: str
    working_directory: str
    runtime_directory: str
    env_file: str
    environment: tuple[tuple[str, str], ...]
    #: Above the server's graceful timeout, so the server finishes first.
    stop_timeout: int
    #: systemd IPAddressAllow= (with IPAddressDeny=any); None: the systemd target derives it.
    ip_address_allow: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ChannelLayer:
    kind: Literal["none", "memory", "redis", "sentinel", "pubsub"]
    backend: str
    hosts: tuple[str, ...]
    sentinels: tuple[tuple[str, int], ...]
    master_name: str | None
    #: As the settings have them (None: the backend's default).
    capacity: int | None
    group_expiry: int | None
    #: What deploykit recommends and the ``channels`` target writes.
    recommended_capacity: int
    recommended_group_expiry: int

    @property
    def crosses_processes(self) -> bool:
        return self.kind not in ("none", "memory")


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

    @property
    def asgi_target(self) -> str:
        """``module:attribute`` as ASGI servers take it."""
        module, _, attribute = self.asgi_application.rpartition(".")
        return f"{module}:{attribute}"


@dataclass(frozen=True)
class Container:
    """The image and the cluster: what the dockerfile, compose and kubernetes targets write."""

    #: Whether ``deployconfig all`` writes the container files (DEPLOYKIT["CONTAINERS"]).
    enabled: bool
    #: Kubernetes object and Compose service names: the app name as a DNS label.
    name: str
    image: str
    tag: str
    python_image: str
    requirements: tuple[str, ...]
    port: int
    namespace: str
    replicas: int
    max_replicas: int
    cpu_request: str
    cpu_limit: str | None
    memory_request: str
    memory_limit: str | None
    #: The plan's server and process manager as they run inside the image:
    #: the image's virtualenv and working directory, a TCP bind on ``port``.
    server: Server
    process_manager: ProcessManager

    @property
    def reference(self) -> str:
        return f"{self.image}:{self.tag}"


@dataclass(frozen=True)
class Plan:
    site: Site
    server: Server
    process_manager: ProcessManager
    channel_layer: ChannelLayer
    app: App
    container: Container
    #: Choices made for the user, printed by the commands (never silent).
    notes: tuple[str, ...] = field(default=())


class _Reader:
    """Reads DEPLOYKIT keys, command-line overrides winning, and names the source in errors."""

    def __init__(self, overrides: Mapping[str, Any], labels: Mapping[str, str]) -> None:
        config = get_config()
        if "__invalid__" in config:
            raise SpecError("DEPLOYKIT", config["__invalid__"], "must be a dict")
        self.config = config
        self.overrides = {k: val for k, val in overrides.items() if val is not None}
        self.labels = labels

    def get(self, key: str) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        return self.config.get(key)

    def label(self, key: str) -> str:
        if key in self.overrides and key in self.labels:
            return self.labels[key]
        return f'DEPLOYKIT["{key}"]'


def build_plan(overrides: Mapping[str, Any] | None = None, labels: Mapping[str, str] | None = None) -> Plan:
    """Resolve settings (and ``overrides``, keyed like ``DEPLOYKIT``) into a validated :class:`Plan`.

    ``labels`` maps an override key to the name shown in errors (``--workers``).
    Raises :class:`~deploykit.exceptions.SpecError` on the first invalid value.
    """
    r = _Reader(overrides or {}, labels or {})
    notes: list[str] = []
    app = _build_app(r)
    layer = _build_channel_layer(r)
    pm = _build_process_manager(r, app)
    server = _build_server(r, app, pm, layer, notes)
    site = _build_site(r, server, pm)
    container = _build_container(r, app, layer)
    return Plan(
        site=site,
        server=server,
        process_manager=pm,
        channel_layer=layer,
        app=app,
        container=container,
        notes=tuple(notes),
    )


def _build_app(r: _Reader) -> App:
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or django_setting("SETTINGS_MODULE") or ""
    settings_module = v.dotted_path(settings_module, "DJANGO_SETTINGS_MODULE")
    asgi = django_setting("ASGI_APPLICATION") or "deploykit.asgi.application"
    asgi = v.dotted_path(asgi, "ASGI_APPLICATION")
    if "." not in asgi:
        raise SpecError("ASGI_APPLICATION", asgi, "must be 'module.attribute'")
    name = r.get("NAME")
    if name is None:
        top = settings_module.split(".")[0].lower().replace("_", "-")
        name = v.identifier(top, 'DEPLOYKIT["NAME"] (default: the settings package)')
    else:
        name = v.identifier(name, r.label("NAME"))
    routes = r.get("WEBSOCKET_ROUTES")
    health = r.get("HEALTH_PATH")
    base_dir = django_setting("BASE_DIR")
    base = v.absolute_path(str(base_dir) if base_dir is not None else os.getcwd(), "BASE_DIR")
    return App(
        name=name,
        asgi_application=asgi,
        settings_module=settings_module,
        websocket_routes=None if routes is None else v.dotted_path(routes, r.label("WEBSOCKET_ROUTES")),
        health_path=None if health is None else _health_path(health, r.label("HEALTH_PATH")),
        base_dir=base,
        peer_hosts=_peer_hosts(),
    )


def _peer_hosts() -> tuple[str, ...]:
    hosts = _hosts_in("DATABASES", ("HOST",))
    # Django 6.1's MAILERS (SMTP backends take OPTIONS["host"]).
    hosts += _hosts_in("MAILERS", ("OPTIONS", "host"))
    # Only when set: Django 6.1 deprecates EMAIL_HOST (warning on every read),
    # and its default is localhost, which the allow list has anyway.
    email = django_setting("EMAIL_HOST") if setting_is_set("EMAIL_HOST") else None
    if email:
        hosts.append(v.hostname(email, "EMAIL_HOST"))
    return tuple(dict.fromkeys(hosts))


def _hosts_in(setting: str, keys: tuple[str, ...]) -> list[str]:
    """The host at ``SETTING[alias][keys...]`` for every alias that has one (DATABASES, MAILERS)."""
    hosts: list[str] = []
    entries = django_setting(setting) or {}
    for alias, entry in entries.items() if isinstance(entries, Mapping) else ():
        value = entry
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        # Empty: the driver's local default; a path: a local unix socket.
        if value and not str(value).startswith("/"):
            label = f'{setting}["{alias}"]' + "".join(f'["{key}"]' for key in keys)
            hosts.append(v.hostname(value, label))
    return hosts


def _health_path(value: Any, label: str) -> str:
    path = v.url_path(value if str(value).endswith("/") else f"{value}/", label)
    return path if str(value).endswith("/") else path[:-1]


def _build_process_manager(r: _Reader, app: App) -> ProcessManager:
    kind = v.choice(r.get("PROCESS_MANAGER"), r.label("PROCESS_MANAGER"), PROCESS_MANAGERS)
    user = r.get("USER")
    user = v.identifier(app.name if user is None else user, r.label("USER"))
    group = v.identifier(r.get("GROUP"), r.label("GROUP"))
    venv = r.get("VIRTUALENV")
    venv_label = r.label("VIRTUALENV") if venv is not None else 'DEPLOYKIT["VIRTUALENV"] (default: sys.prefix)'
    venv = v.absolute_path(sys.prefix if venv is None else venv, venv_label)
    workdir = r.get("WORKING_DIRECTORY")
    workdir = app.base_dir if workdir is None else v.absolute_path(workdir, r.label("WORKING_DIRECTORY"))
    runtime = r.get("RUNTIME_DIRECTORY")
    runtime = v.absolute_path(f"/run/{app.name}" if runtime is None else runtime, r.label("RUNTIME_DIRECTORY"))
    env_file = r.get("ENV_FILE")
    env_file = v.absolute_path(f"/etc/{app.name}/env" if env_file is None else env_file, r.label("ENV_FILE"))
    environment = r.get("ENVIRONMENT")
    if not isinstance(environment, Mapping):
        raise SpecError(r.label("ENVIRONMENT"), environment, "must be a dict of names to strings")
    env = tuple(
        (v.env_name(k, f"{r.label('ENVIRONMENT')}[{k!r}]"), v.env_value(val, f"{r.label('ENVIRONMENT')}[{k!r}]"))
        for k, val in environment.items()
    )
    if kind == "supervisor":
        # supervisor's environment= has no escapes: refuse what it cannot hold.
        for name, value in env:
            try:
                quoting.supervisor_environment([(name, value)])
            except ValueError:
                raise SpecError(
                    f"{r.label('ENVIRONMENT')}[{name!r}]",
                    value,
                    "supervisor's environment= cannot hold a value with both quote kinds, a quote at either "
                    "end, or whitespace before ; or #",
                ) from None
    graceful = v.integer(r.get("GRACEFUL_TIMEOUT"), r.label("GRACEFUL_TIMEOUT"), minimum=1, maximum=3600)
    return ProcessManager(
        kind=kind,
        name=app.name,
        user=user,
        group=group,
        virtualenv=venv,
        python=f"{venv}/bin/python",
        working_directory=workdir,
        runtime_directory=runtime,
        env_file=env_file,
        environment=env,
        stop_timeout=graceful + 15,
        ip_address_allow=_ip_address_allow(r),
    )


#: Keywords systemd.resource-control(5) accepts in IPAddressAllow= besides addresses.
IP_ALLOW_KEYWORDS = ("any", "localhost", "link-local", "multicast")


def _ip_address_allow(r: _Reader) -> tuple[str, ...] | None:
    value = r.get("IP_ADDRESS_ALLOW")
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise SpecError(r.label("IP_ADDRESS_ALLOW"), value, "must be a list of addresses, networks or 'any'")
    return tuple(a if a in IP_ALLOW_KEYWORDS else v.ip_or_network(a, r.label("IP_ADDRESS_ALLOW")) for a in value)


def _default_backend(r: _Reader) -> tuple[str, str]:
    explicit = r.get("SERVER")
    if explicit is not None:
        name = v.choice(explicit, r.label("SERVER"), SERVERS)
        return name, f"server: {name} ({r.label('SERVER')})"
    if importlib.util.find_spec("uvicorn") is not None:
        return "uvicorn", 'server: uvicorn (installed; set DEPLOYKIT["SERVER"] to choose another)'
    return "daphne", 'server: daphne (uvicorn is not installed; set DEPLOYKIT["SERVER"] to choose)'


def _build_server(r: _Reader, app: App, pm: ProcessManager, layer: ChannelLayer, notes: list[str]) -> Server:
    backend, reason = _default_backend(r)
    notes.append(reason)
    processes = v.integer(r.get("PROCESSES"), r.label("PROCESSES"), minimum=1, maximum=64)
    workers = r.get("WORKERS")
    if workers is None:
        if backend == "daphne":
            workers = 1
        elif not layer.crosses_processes:
            workers = 1
            notes.append("workers: 1 (the channel layer does not cross processes; configure Redis to scale)")
        else:
            workers = os.cpu_count() or 1
            notes.append(f"workers: {workers} (one per core)")
    else:
        workers = v.integer(workers, r.label("WORKERS"), minimum=1, maximum=256)
    if backend == "daphne" and workers > 1:
        raise SpecError(
            r.label("WORKERS"),
            workers,
            "daphne has no worker option: run several daphne processes (PROCESSES, supervisor "
            "numprocs) or choose uvicorn, gunicorn, granian or hypercorn",
        )

    addresses, listen = _build_binds(r, app, pm, processes)
    if backend == "daphne" and pm.kind == "supervisor" and addresses[0].kind == "unix":
        # twisted takes an inherited fd as a TCP socket only: with a unix socket
        # on fd 0, daphne logs "Listening on TCP address /:t" and hangs every
        # request (seen in the e2e suite). The Channels docs use tcp:// here.
        raise SpecError(
            r.label("SERVER"),
            backend,
            "daphne cannot serve a unix socket that supervisor passes on fd 0: set BIND "
            "(supervisor socket=tcp://, the Channels docs' shape) or use uvicorn",
        )
    if backend == "granian" and listen.kind == "fd":
        key = "FD" if r.get("FD") is not None else "PROCESS_MANAGER"
        raise SpecError(
            r.label(key),
            r.get(key),
            "granian cannot take an inherited socket (supervisor fcgi-program, socket activation): "
            "use systemd without FD, or another server",
        )
    proxy_headers = v.boolean(r.get("PROXY_HEADERS"), r.label("PROXY_HEADERS"))
    allow = r.get("FORWARDED_ALLOW_IPS")
    if allow is None:
        # A unix socket has no peer address to check, and only local users that
        # the socket's mode admits can reach it: trusting it is safe.
        allow = ("*",) if addresses[0].kind == "unix" else ("127.0.0.1", "::1")
    elif isinstance(allow, str):
        allow = tuple(part.strip() for part in allow.split(","))
    if not isinstance(allow, (tuple, list)) or not allow:
        raise SpecError(r.label("FORWARDED_ALLOW_IPS"), allow, "must be a list of addresses or networks")
    allow = tuple(v.ip_or_network(a, r.label("FORWARDED_ALLOW_IPS")) for a in allow)

    root = r.get("ROOT_PATH")
    if root is None:
        root = v.root_path(django_setting("FORCE_SCRIPT_NAME"), "FORCE_SCRIPT_NAME")
    else:
        root = v.root_path(root, r.label("ROOT_PATH"))

    def seconds(key: str, minimum: int = 1, maximum: int = 86400 * 7) -> int:
        return v.integer(r.get(key), r.label(key), minimum=minimum, maximum=maximum)

    return Server(
        backend=backend,
        backend_reason=reason,
        workers=workers,
        processes=processes,
        addresses=addresses,
        listen=listen,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=allow,
        root_path=root,
        graceful_timeout=seconds("GRACEFUL_TIMEOUT", maximum=3600),
        keepalive_timeout=seconds("KEEPALIVE_TIMEOUT", maximum=3600),
        websocket_ping_interval=seconds("WEBSOCKET_PING_INTERVAL", maximum=3600),
        websocket_ping_timeout=seconds("WEBSOCKET_PING_TIMEOUT", maximum=3600),
        websocket_max_size=_websocket_max_size(r, backend, notes),
        websocket_lifetime=seconds("WEBSOCKET_LIFETIME", maximum=86400 * 365),
        websocket_compression=_websocket_compression(r, backend, notes),
        access_log=_access_log(r),
        log_level=v.choice(r.get("LOG_LEVEL"), r.label("LOG_LEVEL"), LOG_LEVELS),
        log_format=v.choice(r.get("LOG_FORMAT"), r.label("LOG_FORMAT"), LOG_FORMATS),
    )


def _websocket_max_size(r: _Reader, backend: str, notes: list[str]) -> int:
    size = v.integer(r.get("WEBSOCKET_MAX_SIZE"), r.label("WEBSOCKET_MAX_SIZE"), minimum=1024, maximum=2**30)
    if backend == "granian":
        notes.append("WEBSOCKET_MAX_SIZE: granian has no WebSocket message limit option; its own applies")
    return size


def _websocket_compression(r: _Reader, backend: str, notes: list[str]) -> bool:
    # Off unless asked for, for the reason the proxy gzips static files only:
    # compressed frames that mix secrets with attacker-chosen text leak them
    # (CRIME/BREACH). It also keeps a zlib context per connection and costs CPU
    # on every message, for little gain on a chat's short messages.
    # https://websockets.readthedocs.io/en/stable/topics/compression.html
    compression = v.boolean(r.get("WEBSOCKET_COMPRESSION"), r.label("WEBSOCKET_COMPRESSION"))
    if compression and backend in ("daphne", "granian"):
        notes.append(f"WEBSOCKET_COMPRESSION: {backend} does not negotiate permessage-deflate")
    if not compression and backend == "hypercorn":
        notes.append("WEBSOCKET_COMPRESSION: hypercorn always negotiates permessage-deflate (no option to refuse it)")
    return compression


def _access_log(r: _Reader) -> bool:
    value = r.get("ACCESS_LOG")
    if value is None:
        # Behind the proxy, its access log already has every request with the
        # real client address; a second one in the server doubles the log volume
        # and costs CPU per request (the uMap docs run uvicorn --no-access-log).
        # Development (DEBUG) keeps it, like runserver.
        return bool(django_setting("DEBUG"))
    return v.boolean(value, r.label("ACCESS_LOG"))


def _numbered(path: str, index: int) -> str:
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}-{index}.{suffix}" if dot and "/" not in suffix else f"{path}-{index}"


def _build_binds(r: _Reader, app: App, pm: ProcessManager, processes: int) -> tuple[tuple[Bind, ...], Bind]:
    fd = r.get("FD")
    listen_fd = None if fd is None else Bind("fd", fd=v.integer(fd, r.label("FD"), minimum=0, maximum=1023))
    # A command-line address wins over both settings; in settings SOCKET wins.
    sock = bind = None
    for source in (r.overrides, r.config):
        if source.get("SOCKET") is not None or source.get("BIND") is not None:
            sock, bind = source.get("SOCKET"), source.get("BIND")
            break
    if sock is None and bind is not None:
        host, port = v.host_port(bind, r.label("BIND"))
        first = Bind("tcp", host=host, port=port)
        if port + processes - 1 > 65535:
            raise SpecError(r.label("PROCESSES"), processes, "one port per process runs past 65535")
        many = tuple(Bind("tcp", host=host, port=port + i) for i in range(processes))
    else:
        label = r.label("SOCKET") if sock is not None else 'DEPLOYKIT["SOCKET"] (default: RUNTIME_DIRECTORY/NAME.sock)'
        path = v.socket_path(f"{pm.runtime_directory}/{app.name}.sock" if sock is None else sock, label)
        first = Bind("unix", path=path)
        many = tuple(Bind("unix", path=v.socket_path(_numbered(path, i), label)) for i in range(processes))
    if pm.kind == "supervisor":
        # supervisor's fcgi-program owns the one socket and hands it to every
        # process as fd 0 (the Channels docs' shape).
        return (first,), listen_fd or Bind("fd", fd=0)
    addresses = (first,) if processes == 1 else many
    return addresses, listen_fd or addresses[0]


def _build_site(r: _Reader, server: Server, pm: ProcessManager) -> Site:
    proxy = v.choice(r.get("PROXY"), r.label("PROXY"), PROXIES)
    names = r.get("SERVER_NAMES")
    if names is None:
        names_label = "ALLOWED_HOSTS"
        hosts = django_setting("ALLOWED_HOSTS") or []
        if not hosts and django_setting("DEBUG"):
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        # "*" is Django's wildcard, not a server name; an nginx catch-all is "_".
        names = [h for h in hosts if h != "*"]
    else:
        names_label = r.label("SERVER_NAMES")
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise SpecError(names_label, names, "must be a list of host names")
    if not names:
        raise SpecError(names_label, names, "needs at least one host name for server_name (not only '*')")
    server_names = tuple(dict.fromkeys(v.hostname(n, names_label) for n in names))

    listen = r.get("LISTEN_ADDRESS")
    if listen is not None:
        listen = v.ip_or_network(listen, r.label("LISTEN_ADDRESS"))
        if "/" in listen and not listen.endswith(("/32", "/128")):
            raise SpecError(r.label("LISTEN_ADDRESS"), listen, "must be one IP address")
        listen = listen.split("/")[0]

    cert, key, acme = r.get("TLS_CERTIFICATE"), r.get("TLS_CERTIFICATE_KEY"), r.get("ACME_WEBROOT")
    tls: TLS | None = None
    if cert is not None or key is not None:
        if cert is None or key is None:
            missing = "TLS_CERTIFICATE" if cert is None else "TLS_CERTIFICATE_KEY"
            raise SpecError(r.label(missing), None, "TLS_CERTIFICATE and TLS_CERTIFICATE_KEY go together")
        tls = TLS(
            certificate=v.absolute_path(cert, r.label("TLS_CERTIFICATE")),
            certificate_key=v.absolute_path(key, r.label("TLS_CERTIFICATE_KEY")),
            acme_webroot=None if acme is None else v.absolute_path(acme, r.label("ACME_WEBROOT")),
        )
    elif acme is not None:
        tls = TLS(acme_webroot=v.absolute_path(acme, r.label("ACME_WEBROOT")))

    static_url, static_root = _static("STATIC_URL", "STATIC_ROOT", server.root_path)
    media_url, media_root = _static("MEDIA_URL", "MEDIA_ROOT", server.root_path)

    body = r.get("MAX_BODY_SIZE")
    if body is None:
        limits = [django_setting("DATA_UPLOAD_MAX_MEMORY_SIZE"), django_setting("FILE_UPLOAD_MAX_MEMORY_SIZE")]
        # None means Django sets no limit; 0 is nginx's "unlimited".
        names = ("DATA_UPLOAD_MAX_MEMORY_SIZE", "FILE_UPLOAD_MAX_MEMORY_SIZE")
        body = 0 if None in limits else max(v.integer(x, n, maximum=2**40) for x, n in zip(limits, names, strict=True))
        body_label = "DATA_UPLOAD_MAX_MEMORY_SIZE"
    else:
        body_label = r.label("MAX_BODY_SIZE")
    max_body = v.integer(body, body_label, minimum=0, maximum=2**40)

    read_timeout = r.get("PROXY_READ_TIMEOUT")
    if read_timeout is None:
        read_timeout = max(60, 2 * server.websocket_ping_interval + server.websocket_ping_timeout)
    read_timeout = v.integer(read_timeout, r.label("PROXY_READ_TIMEOUT"), minimum=1, maximum=86400 * 7)

    ssl_header = django_setting("SECURE_PROXY_SSL_HEADER")
    if ssl_header is not None:
        if not (isinstance(ssl_header, (tuple, list)) and len(ssl_header) == 2):
            raise SpecError("SECURE_PROXY_SSL_HEADER", ssl_header, "must be a (header, value) pair")
        ssl_header = (
            v.meta_header(ssl_header[0], "SECURE_PROXY_SSL_HEADER[0]"),
            v.token(ssl_header[1], "SECURE_PROXY_SSL_HEADER[1]"),
        )

    upstream_setting = r.get("UPSTREAM")
    if upstream_setting is None:
        upstream = server.addresses
    else:
        if isinstance(upstream_setting, str) or not isinstance(upstream_setting, (list, tuple)) or not upstream_setting:
            raise SpecError(r.label("UPSTREAM"), upstream_setting, "must be a list of HOST:PORT")
        upstream = tuple(
            Bind("tcp", host=h, port=p) for h, p in (v.host_port(u, r.label("UPSTREAM")) for u in upstream_setting)
        )

    return Site(
        proxy=proxy,
        server_names=server_names,
        listen_address=listen,
        http_port=v.port(r.get("HTTP_PORT"), r.label("HTTP_PORT")),
        https_port=v.port(r.get("HTTPS_PORT"), r.label("HTTPS_PORT")),
        tls=tls,
        root_path=server.root_path,
        static_url=static_url,
        static_root=static_root,
        media_url=media_url,
        media_root=media_root,
        max_body_size=max_body,
        proxy_read_timeout=read_timeout,
        hsts_seconds=v.integer(django_setting("SECURE_HSTS_SECONDS", 0) or 0, "SECURE_HSTS_SECONDS", maximum=2**31),
        hsts_include_subdomains=bool(django_setting("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)),
        hsts_preload=bool(django_setting("SECURE_HSTS_PRELOAD", False)),
        proxy_ssl_header=ssl_header,
        upstream=upstream,
        sticky_sessions=v.boolean(r.get("STICKY_SESSIONS"), r.label("STICKY_SESSIONS")),
    )


def _static(url_setting: str, root_setting: str, root_path: str) -> tuple[str | None, str | None]:
    """(URL path the proxy serves, directory) or (None, None) when the proxy has nothing to serve."""
    url = django_setting(url_setting)
    root = django_setting(root_setting)
    if not url or not root or "://" in str(url) or str(url).startswith("//"):
        return None, None
    url = str(url)
    if not url.startswith("/"):
        # Django prefixes a relative STATIC_URL with the script name.
        url = f"{root_path}/{url}"
    return v.url_path(url, url_setting), v.absolute_path(str(root), root_setting)


def _build_channel_layer(r: _Reader) -> ChannelLayer:
    capacity_rec = v.integer(r.get("CHANNEL_CAPACITY"), r.label("CHANNEL_CAPACITY"), minimum=1, maximum=10**7)
    lifetime = v.integer(r.get("WEBSOCKET_LIFETIME"), r.label("WEBSOCKET_LIFETIME"), minimum=1, maximum=86400 * 365)
    expiry_setting = r.get("GROUP_EXPIRY")
    expiry_rec = (
        max(REDIS_DEFAULT_GROUP_EXPIRY, lifetime)
        if expiry_setting is None
        else v.integer(expiry_setting, r.label("GROUP_EXPIRY"), minimum=1, maximum=86400 * 365)
    )
    url = r.get("REDIS_URL")
    if url is not None:
        return ChannelLayer(
            kind="redis",
            backend=REDIS_BACKEND,
            hosts=(v.redis_url(url, r.label("REDIS_URL")),),
            sentinels=(),
            master_name=None,
            capacity=capacity_rec,
            group_expiry=expiry_rec,
            recommended_capacity=capacity_rec,
            recommended_group_expiry=expiry_rec,
        )
    layers = django_setting("CHANNEL_LAYERS") or {}
    default = layers.get("default") if isinstance(layers, Mapping) else None
    if default is None:
        return ChannelLayer("none", "", (), (), None, None, None, capacity_rec, expiry_rec)
    if not isinstance(default, Mapping) or not isinstance(default.get("BACKEND"), str):
        raise SpecError('CHANNEL_LAYERS["default"]', default, "must be a dict with a BACKEND")
    backend = v.dotted_path(default["BACKEND"], 'CHANNEL_LAYERS["default"]["BACKEND"]')
    config = default.get("CONFIG") or {}
    if not isinstance(config, Mapping):
        raise SpecError('CHANNEL_LAYERS["default"]["CONFIG"]', config, "must be a dict")
    label = 'CHANNEL_LAYERS["default"]["CONFIG"]'
    capacity = config.get("capacity")
    group_expiry = config.get("group_expiry")
    capacity = None if capacity is None else v.integer(capacity, f'{label}["capacity"]', minimum=1)
    group_expiry = None if group_expiry is None else v.integer(group_expiry, f'{label}["group_expiry"]', minimum=1)
    if backend == IN_MEMORY_BACKEND:
        return ChannelLayer("memory", backend, (), (), None, capacity, group_expiry, capacity_rec, expiry_rec)
    hosts: list[str] = []
    sentinels: list[tuple[str, int]] = []
    master_name: str | None = None
    for i, host in enumerate(config.get("hosts") or ["redis://localhost:6379"]):
        host_label = f'{label}["hosts"][{i}]'
        if isinstance(host, str):
            hosts.append(v.redis_url(host, host_label))
        elif isinstance(host, (tuple, list)) and len(host) == 2:
            h, p = v.host_port(f"{host[0]}:{host[1]}", host_label)
            hosts.append(f"redis://{h}:{p}")
        elif isinstance(host, Mapping) and "sentinels" in host:
            for s in host["sentinels"]:
                if isinstance(s, str) or not isinstance(s, (tuple, list)) or len(s) != 2:
                    raise SpecError(f'{host_label}["sentinels"]', s, "must be a (host, port) pair")
                sentinels.append(v.host_port(f"{s[0]}:{s[1]}", f'{host_label}["sentinels"]'))
            master_name = v.identifier(host.get("master_name", "mymaster"), f'{host_label}["master_name"]')
        elif isinstance(host, Mapping) and "address" in host:
            hosts.append(v.redis_url(host["address"], f'{host_label}["address"]'))
        else:
            raise SpecError(host_label, host, "must be a redis:// URL, a (host, port) pair or a sentinel dict")
    kind: Literal["redis", "sentinel", "pubsub"] = (
        "sentinel" if sentinels else "pubsub" if backend == PUBSUB_BACKEND else "redis"
    )
    return ChannelLayer(
        kind, backend, tuple(hosts), tuple(sentinels), master_name, capacity, group_expiry, capacity_rec, expiry_rec
    )


#: Where the image keeps its virtualenv and the project (the Dockerfile's WORKDIR).
CONTAINER_VIRTUALENV = "/opt/venv"
CONTAINER_WORKDIR = "/app"
#: The image's unprivileged user and group: numeric, so Kubernetes can verify runAsNonRoot.
CONTAINER_UID = 10001


def _build_container(r: _Reader, app: App, layer: ChannelLayer) -> Container:
    enabled = v.boolean(r.get("CONTAINERS"), r.label("CONTAINERS"))
    if enabled and app.health_path is None:
        raise SpecError(
            r.label("HEALTH_PATH"), None, "containers need a readiness endpoint for HEALTHCHECK and probes: set it"
        )
    name = v.dns_label(app.name.replace("_", "-").strip("-"), 'DEPLOYKIT["NAME"] (as a Kubernetes name)')
    image = r.get("IMAGE")
    image = v.image_name(name if image is None else image, r.label("IMAGE"))
    namespace = r.get("NAMESPACE")
    namespace = v.dns_label(name if namespace is None else namespace, r.label("NAMESPACE"))
    requirements = r.get("REQUIREMENTS")
    if isinstance(requirements, str) or not isinstance(requirements, (list, tuple)) or not requirements:
        raise SpecError(r.label("REQUIREMENTS"), requirements, "must be a list of requirement files")
    replicas = v.integer(r.get("REPLICAS"), r.label("REPLICAS"), minimum=1, maximum=1000)
    max_replicas = r.get("MAX_REPLICAS")
    port = v.port(r.get("CONTAINER_PORT"), r.label("CONTAINER_PORT"))

    def optional_quantity(key: str) -> str | None:
        value = r.get(key)
        return None if value is None else v.quantity(value, r.label(key))

    # The same server, as it runs in the image: one process on a TCP port that
    # the proxy container, Service or Ingress reaches over the container network.
    inside: dict[str, Any] = {
        **{k: val for k, val in r.overrides.items() if k not in ("SOCKET", "FD")},
        "BIND": f"0.0.0.0:{port}",
        "PROCESSES": 1,
        "PROCESS_MANAGER": "systemd",
        "VIRTUALENV": CONTAINER_VIRTUALENV,
        "WORKING_DIRECTORY": CONTAINER_WORKDIR,
    }
    if r.get("WORKERS") is None:
        # Scale with replicas: os.cpu_count() here is not the pod's CPU limit.
        inside["WORKERS"] = 1
    if r.get("FORWARDED_ALLOW_IPS") is None:
        # Only the proxy (nginx container, ingress controller) reaches the
        # port, from addresses that are not known in advance.
        inside["FORWARDED_ALLOW_IPS"] = "*"
    inner = _Reader(inside, r.labels)
    inner.config = {**inner.config, "SOCKET": None, "FD": None}
    inner_app = replace(app, base_dir=CONTAINER_WORKDIR)
    pm = _build_process_manager(inner, inner_app)
    return Container(
        enabled=enabled,
        name=name,
        image=image,
        tag=v.image_tag(r.get("IMAGE_TAG"), r.label("IMAGE_TAG")),
        python_image=v.image_reference(r.get("PYTHON_IMAGE"), r.label("PYTHON_IMAGE")),
        requirements=tuple(v.relative_path(f, r.label("REQUIREMENTS")) for f in requirements),
        port=port,
        namespace=namespace,
        replicas=replicas,
        max_replicas=3 * replicas
        if max_replicas is None
        else v.integer(max_replicas, r.label("MAX_REPLICAS"), minimum=replicas, maximum=10000),
        cpu_request=v.quantity(r.get("CPU_REQUEST"), r.label("CPU_REQUEST")),
        cpu_limit=optional_quantity("CPU_LIMIT"),
        memory_request=v.quantity(r.get("MEMORY_REQUEST"), r.label("MEMORY_REQUEST")),
        memory_limit=optional_quantity("MEMORY_LIMIT"),
        server=_build_server(inner, inner_app, pm, layer, []),
        process_manager=pm,
    )
