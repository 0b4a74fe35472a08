"""The server section: which ASGI server, how many processes, where it binds, whom it trusts."""

from __future__ import annotations

import importlib.util
import os

from deploykit import validators as v
from deploykit.conf import django_setting
from deploykit.exceptions import SpecError
from deploykit.plan.model import (
    INHERITED_SOCKET_SERVERS,
    INHERITED_UNIX_SOCKET_SERVERS,
    LOG_FORMATS,
    LOG_LEVELS,
    SERVERS,
    SYSTEMD_LISTEN_FD,
    App,
    Bind,
    ChannelLayer,
    ProcessManager,
    Server,
    takes_inherited_socket,
)
from deploykit.plan.process import drain_timeout
from deploykit.plan.reader import Reader
from deploykit.plan.sitemodel import is_ip


def _default_backend(r: Reader) -> tuple[str, str]:
    explicit = r.get("SERVER")
    if explicit is not None:
        name = v.choice(explicit, r.label("SERVER"), SERVERS)
        return name, f"server: {name} ({r.label('SERVER')})"
    if importlib.util.find_spec("uvicorn") is not None:
        return "uvicorn", 'server: uvicorn (installed; set DEPLOYKIT["SERVER"] to choose another)'
    return "daphne", 'server: daphne (uvicorn is not installed; set DEPLOYKIT["SERVER"] to choose)'


def build_server(r: Reader, app: App, pm: ProcessManager, layer: ChannelLayer, notes: list[str]) -> Server:
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
    if listen.kind == "fd" and not takes_inherited_socket(backend, addresses[0]):
        key = "FD" if r.get("FD") is not None else "PROCESS_MANAGER"
        owner = "supervisor passes on fd 0" if pm.kind == "supervisor" else "systemd passes (socket activation)"
        if backend in INHERITED_SOCKET_SERVERS:
            # twisted takes an inherited fd as a TCP socket only: with a unix socket
            # daphne logs "Listening on TCP address /:t" and hangs every request (seen
            # in the e2e suite). The Channels docs use tcp:// here.
            raise SpecError(
                r.label("SERVER"),
                backend,
                f"{backend} cannot serve a unix socket that {owner}: set BIND (supervisor socket=tcp://, "
                f"systemd ListenStream=HOST:PORT; the Channels docs' shape) or use "
                f"{', '.join(INHERITED_UNIX_SOCKET_SERVERS)}",
            )
        raise SpecError(
            r.label(key),
            r.get(key),
            f"{backend} cannot take an inherited socket (supervisor fcgi-program, socket activation): "
            f"use systemd without FD, or {', '.join(INHERITED_SOCKET_SERVERS)}",
        )
    max_requests, jitter = recycling(r)
    if max_requests is not None and backend == "uvicorn" and workers == 1:
        # uvicorn runs one worker without its supervisor: at the limit the whole server exits, and
        # requests fail until the process manager starts it again (RestartSec=).
        raise SpecError(
            r.label("MAX_REQUESTS"),
            max_requests,
            "uvicorn with one worker has no supervisor to replace it: the whole server would exit; "
            "set WORKERS to 2 or more, or use gunicorn or hypercorn (their master replaces the worker)",
        )
    proxy_headers = v.boolean(r.get("PROXY_HEADERS"), r.label("PROXY_HEADERS"))
    allow = forwarded_allow_ips(r, addresses[0])
    root = root_path(r)

    def seconds(key: str, minimum: int = 1, maximum: int = 86400 * 7) -> int:
        return v.integer(r.get(key), r.label(key), minimum=minimum, maximum=maximum)

    drain = drain_timeout(r)

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
        # At least granian's minimum; above net.core.somaxconn the kernel uses its cap.
        backlog=v.integer(r.get("BACKLOG"), r.label("BACKLOG"), minimum=128, maximum=65535),
        websocket_ping_interval=seconds("WEBSOCKET_PING_INTERVAL", maximum=3600),
        websocket_ping_timeout=seconds("WEBSOCKET_PING_TIMEOUT", maximum=3600),
        websocket_max_size=_websocket_max_size(r, backend, notes),
        websocket_lifetime=seconds("WEBSOCKET_LIFETIME", maximum=86400 * 365),
        websocket_compression=_websocket_compression(r, backend, notes),
        access_log=access_log(r),
        log_level=v.choice(r.get("LOG_LEVEL"), r.label("LOG_LEVEL"), LOG_LEVELS),
        log_format=v.choice(r.get("LOG_FORMAT"), r.label("LOG_FORMAT"), LOG_FORMATS),
        max_requests=max_requests,
        max_requests_jitter=jitter,
        drain_timeout=drain,
        drain_file=drain_file(pm.runtime_directory, app.name) if drain else None,
    )


def recycling(r: Reader) -> tuple[int | None, int]:
    """MAX_REQUESTS and its jitter (a tenth of it unless MAX_REQUESTS_JITTER says otherwise)."""
    limit, jitter = r.get("MAX_REQUESTS"), r.get("MAX_REQUESTS_JITTER")
    if limit is None:
        if jitter is not None:
            raise SpecError(r.label("MAX_REQUESTS_JITTER"), jitter, "has nothing to vary: MAX_REQUESTS is not set")
        return None, 0
    limit = v.integer(limit, r.label("MAX_REQUESTS"), minimum=1, maximum=10**9)
    if jitter is None:
        # Workers started together would reach the limit together and all go at once.
        return limit, limit // 10
    return limit, v.integer(jitter, r.label("MAX_REQUESTS_JITTER"), minimum=0, maximum=limit)


def drain_file(runtime_directory: str, name: str) -> str:
    """The drain file of the service named ``name``: in its runtime directory, which systemd creates empty."""
    return v.absolute_path(f"{runtime_directory.rstrip('/')}/{name}.drain", 'DEPLOYKIT["RUNTIME_DIRECTORY"]')


def forwarded_allow_ips(r: Reader, bind: Bind) -> tuple[str, ...]:
    """FORWARDED_ALLOW_IPS, or the default for ``bind``: the trust rule both servers of a split plan share."""
    allow = r.get("FORWARDED_ALLOW_IPS")
    if allow is None:
        # A unix socket has no peer address to check, and only local users that
        # the socket's mode admits can reach it: trusting it is safe.
        allow = ("*",) if bind.kind == "unix" else ("127.0.0.1", "::1")
    elif isinstance(allow, str):
        allow = tuple(part.strip() for part in allow.split(","))
    if not isinstance(allow, (tuple, list)) or not allow:
        raise SpecError(r.label("FORWARDED_ALLOW_IPS"), allow, "must be a list of addresses or networks")
    return tuple(v.ip_or_network(a, r.label("FORWARDED_ALLOW_IPS")) for a in allow)


def root_path(r: Reader) -> str:
    root = r.get("ROOT_PATH")
    if root is None:
        return v.root_path(django_setting("FORCE_SCRIPT_NAME"), "FORCE_SCRIPT_NAME")
    return v.root_path(root, r.label("ROOT_PATH"))


def _websocket_max_size(r: Reader, backend: str, notes: list[str]) -> int:
    size = v.integer(r.get("WEBSOCKET_MAX_SIZE"), r.label("WEBSOCKET_MAX_SIZE"), minimum=1024, maximum=2**30)
    if backend == "granian":
        notes.append("WEBSOCKET_MAX_SIZE: granian has no WebSocket message limit option; its own applies")
    return size


def _websocket_compression(r: Reader, backend: str, notes: list[str]) -> bool:
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


def access_log(r: Reader) -> bool:
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


def _build_binds(r: Reader, app: App, pm: ProcessManager, processes: int) -> tuple[tuple[Bind, ...], Bind]:
    fd = r.get("FD")
    listen_fd = None if fd is None else Bind("fd", fd=v.integer(fd, r.label("FD"), minimum=0, maximum=1023))
    if listen_fd is not None and pm.kind == "systemd" and listen_fd.fd != SYSTEMD_LISTEN_FD:
        # The socket unit has one ListenStream=: systemd passes it as the first fd after stdio.
        raise SpecError(
            r.label("FD"),
            fd,
            f"systemd passes the socket unit's socket as fd {SYSTEMD_LISTEN_FD} (SD_LISTEN_FDS_START): "
            f"set FD to {SYSTEMD_LISTEN_FD} (--fd {SYSTEMD_LISTEN_FD})",
        )
    # A command-line address replaces both settings (--bind drops SOCKET from settings).
    source, command_line = r.first_layer_setting(("SOCKET", "BIND"))
    sock, bind = source.get("SOCKET"), source.get("BIND")
    if sock is not None and bind is not None:
        where = "--uds and --bind" if command_line else 'DEPLOYKIT["SOCKET"] and DEPLOYKIT["BIND"]'
        raise SpecError(r.label("BIND"), bind, f"{where} are both set: the server binds one address; keep one")
    if bind is not None:
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
    if first.kind == "tcp" and not is_ip(first.host):
        if pm.kind == "supervisor" or listen_fd is not None:
            # The process manager binds it: systemd's ListenStream= and supervisor's socket= take addresses.
            owner = "supervisor's socket=" if pm.kind == "supervisor" else "systemd's ListenStream="
            raise SpecError(r.label("BIND"), bind, f"{owner} takes an IP address, not a host name")
    if pm.kind == "supervisor":
        if first.kind == "tcp" and ":" in first.host:
            # supervisor.datatypes.inet_address splits tcp://[::1]:8000 at the first ':' and refuses it.
            raise SpecError(r.label("BIND"), bind, "supervisor's socket=tcp:// cannot take an IPv6 address")
        # supervisor's fcgi-program owns the one socket and hands it to every
        # process as fd 0 (the Channels docs' shape).
        return (first,), listen_fd or Bind("fd", fd=0)
    addresses = (first,) if processes == 1 else many
    return addresses, listen_fd or addresses[0]
