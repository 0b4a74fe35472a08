"""The WSGI section: split serving, HTTP through a WSGI server next to the ASGI server (issue 15).

Off unless DEPLOYKIT["WSGI_SERVER"] is set. Django's ASGI handler runs every
sync view and sync middleware through ``sync_to_async``, a thread hop per
request; under WSGI they run as they are (the issue measured granian WSGI at
6-8x uvicorn ASGI on the same view). The proxy sends WebSocket handshakes to
the ASGI server and everything else here.
"""

from __future__ import annotations

import os

from deploykit import validators as v
from deploykit.conf import django_setting
from deploykit.exceptions import SpecError
from deploykit.plan.model import (
    INHERITED_SOCKET_SERVERS,
    LOG_LEVELS,
    WSGI_SERVERS,
    App,
    Bind,
    ProcessManager,
    Server,
    WsgiServer,
)
from deploykit.plan.reader import Reader
from deploykit.plan.server import access_log, drain_file, forwarded_allow_ips, root_path

#: gthread threads per worker (and granian's blocking threads) unless WSGI_THREADS says otherwise.
#: 8, not gunicorn's customary 4: on the realistic page (an authenticated session, queries, a
#: template) under load (64 connections), 8 threads spent 27% less CPU per request than 4 with
#: granian and 16% less with gunicorn gthread, 1 and 2 more than 4, 16 no less than 8 (A/B runs,
#: issue 15); a request waiting for a thread costs the worker CPU. Each thread may hold a database
#: connection (CONN_MAX_AGE) and costs about half a MiB (PSS).
DEFAULT_THREADS = 8
#: The WSGI application when WSGI_APPLICATION is unset (deploykit/wsgi.py).
DEFAULT_APPLICATION = "deploykit.wsgi.application"
#: What the WSGI service's name adds to NAME (its unit, program, socket and runtime directory).
SUFFIX = "-http"


def build_wsgi(r: Reader, app: App, pm: ProcessManager, server: Server, notes: list[str]) -> WsgiServer | None:
    backend = r.get("WSGI_SERVER")
    if backend is None:
        return None
    backend = v.choice(backend, r.label("WSGI_SERVER"), WSGI_SERVERS)
    application = django_setting("WSGI_APPLICATION")
    if not application:
        # What runserver serves without WSGI_APPLICATION: Django's own handler (projects written for ASGI
        # often have no wsgi.py), as the ASGI side falls back to deploykit.asgi.
        application = DEFAULT_APPLICATION
        notes.append(f"WSGI application: {DEFAULT_APPLICATION} (Django's own WSGI handler; WSGI_APPLICATION is unset)")
    application = v.dotted_path(application, "WSGI_APPLICATION")
    if "." not in application:
        raise SpecError("WSGI_APPLICATION", application, "must be 'module.attribute'")
    workers = r.get("WSGI_WORKERS")
    if workers is None:
        # No channel layer to share: a WSGI worker per core is always right.
        workers = os.cpu_count() or 1
        notes.append(f"WSGI workers: {workers} (one per core)")
    workers = v.integer(workers, r.label("WSGI_WORKERS"), minimum=1, maximum=256)
    threads = r.get("WSGI_THREADS")
    threads = v.integer(
        DEFAULT_THREADS if threads is None else threads, r.label("WSGI_THREADS"), minimum=1, maximum=256
    )
    name = v.identifier(app.name + SUFFIX, r.label("NAME") + f" (+ {SUFFIX!r}: the WSGI service)")
    runtime = pm.runtime_directory.rstrip("/") + SUFFIX
    address = _bind(r, server, name, runtime)
    listen = address
    if pm.kind == "supervisor":
        if backend not in INHERITED_SOCKET_SERVERS:
            raise SpecError(
                r.label("WSGI_SERVER"),
                backend,
                f"{backend} cannot take an inherited socket (supervisor fcgi-program): use gunicorn, or systemd",
            )
        # supervisor's fcgi-program owns the socket and passes it as fd 0, like the ASGI side's.
        listen = Bind("fd", fd=0)
    return WsgiServer(
        backend=backend,
        application=application,
        workers=workers,
        threads=threads,
        name=name,
        runtime_directory=runtime,
        addresses=(address,),
        listen=listen,
        proxy_headers=server.proxy_headers,
        # The same rule as the ASGI side, for this side's own address (a TCP bind trusts loopback, not "*").
        forwarded_allow_ips=forwarded_allow_ips(r, address),
        root_path=root_path(r),
        graceful_timeout=server.graceful_timeout,
        keepalive_timeout=server.keepalive_timeout,
        backlog=server.backlog,
        access_log=access_log(r),
        log_level=v.choice(r.get("LOG_LEVEL"), r.label("LOG_LEVEL"), LOG_LEVELS),
        # The same setting recycles both sides.
        max_requests=server.max_requests,
        max_requests_jitter=server.max_requests_jitter,
        drain_file=drain_file(runtime, name) if server.drain_file else None,
    )


def _bind(r: Reader, server: Server, name: str, runtime: str) -> Bind:
    bind = r.get("WSGI_BIND")
    if bind is not None:
        host, port = v.host_port(bind, r.label("WSGI_BIND"))
        return Bind("tcp", host=host, port=port)
    last = server.addresses[-1]
    if last.kind == "tcp":
        # Next to the ASGI ports (one per process), on the same host.
        if last.port >= 65535:
            raise SpecError(r.label("BIND"), str(last), "leaves no port for the WSGI server: set WSGI_BIND")
        return Bind("tcp", host=last.host, port=last.port + 1)
    return Bind("unix", path=v.socket_path(f"{runtime}/{name}.sock", 'DEPLOYKIT["RUNTIME_DIRECTORY"]'))
