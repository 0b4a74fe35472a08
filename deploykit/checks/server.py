"""Checks on the server and its process manager: trust, shutdown, sockets, middleware cost."""

from __future__ import annotations

from django.core import checks
from django.utils.module_loading import import_string

from deploykit.plan import Plan
from deploykit.plan.model import RECYCLING_SERVERS
from deploykit.plan.process import DRAIN_WAIT_MARGIN


def proxy_headers_trusted_from_anywhere(plan: Plan) -> list[checks.CheckMessage]:
    server = plan.server
    exposed = [b for b in server.addresses if not b.is_loopback]
    everyone = "*" in server.forwarded_allow_ips or server.backend == "daphne"
    if server.proxy_headers and everyone and exposed:
        return [
            checks.Warning(
                f"The server trusts X-Forwarded-For/-Proto from every peer and listens on {exposed[0]}: "
                "any client that reaches the port can forge its address and scheme.",
                hint='Set DEPLOYKIT["FORWARDED_ALLOW_IPS"] to the proxy\'s addresses (daphne cannot: bind it to '
                "a unix socket or loopback), or set PROXY_HEADERS to False.",
                id="deploykit.W001",
            )
        ]
    return []


def graceful_timeout_not_below_stop_timeout(plan: Plan) -> list[checks.CheckMessage]:
    graceful, stop = plan.server.graceful_timeout, plan.process_manager.stop_timeout
    if graceful >= stop:
        return [
            checks.Warning(
                f"The graceful-shutdown timeout ({graceful}s) is not shorter than {plan.process_manager.kind}'s "
                f"stop timeout ({stop}s): the server is killed before it finishes its requests.",
                hint='Lower DEPLOYKIT["GRACEFUL_TIMEOUT"] below the stop timeout.',
                id="deploykit.W004",
            )
        ]
    return []


def drain_longer_than_stop_timeout(plan: Plan) -> list[checks.CheckMessage]:
    # systemd gives each ExecStop= TimeoutStopSec: a drain that needs longer is killed, and the SIGTERM that
    # follows closes every WebSocket still open at once, the herd the drain exists to avoid.
    pm, server = plan.process_manager, plan.server
    needed = server.drain_timeout + DRAIN_WAIT_MARGIN
    if pm.kind == "systemd" and server.drains_on_stop and pm.stop_timeout < needed:
        return [
            checks.Warning(
                f"DRAIN_TIMEOUT ({server.drain_timeout}s) does not fit in the unit's TimeoutStopSec={pm.stop_timeout}: "
                f"systemd kills the drain (ExecStop=) after {pm.stop_timeout}s and every WebSocket still open "
                "closes at once.",
                hint=f'Raise DEPLOYKIT["STOP_TIMEOUT"] to {needed} or more (or unset it), or lower DRAIN_TIMEOUT.',
                id="deploykit.W018",
            )
        ]
    return []


def socket_outside_runtime_directory(plan: Plan) -> list[checks.CheckMessage]:
    pm = plan.process_manager
    outside = [
        b.path
        for b in plan.server.addresses
        if b.kind == "unix" and not b.path.startswith(pm.runtime_directory.rstrip("/") + "/")
    ]
    if pm.kind == "systemd" and outside:
        return [
            checks.Warning(
                f"The socket {outside[0]} is outside RUNTIME_DIRECTORY ({pm.runtime_directory}): under the "
                "unit's ProtectSystem=strict the server cannot create it there.",
                hint=f'Put SOCKET under {pm.runtime_directory}/ or set DEPLOYKIT["RUNTIME_DIRECTORY"] to its folder.',
                id="deploykit.W010",
            )
        ]
    return []


def sync_only_middleware(plan: Plan) -> list[checks.CheckMessage]:
    if plan.wsgi is not None:
        return []  # HTTP runs under WSGI, where sync middleware costs no thread hop
    sync_only = []
    for path in plan.app.middleware:
        try:
            middleware = import_string(path)
        except ImportError:
            continue  # Django's own checks report it
        if not getattr(middleware, "async_capable", False):
            sync_only.append(path)
    if sync_only:
        return [
            checks.Info(
                f"Synchronous-only middleware under ASGI: {', '.join(sync_only)}. Each one makes Django hop "
                "to a thread and back for every request.",
                hint="Use async-capable versions (sync_capable/async_capable, or MiddlewareMixin), or drop them: "
                "https://docs.djangoproject.com/en/stable/topics/http/middleware/#asynchronous-support",
                id="deploykit.I001",
            )
        ]
    return []


def recycled_workers_drop_websockets(plan: Plan) -> list[checks.CheckMessage]:
    server = plan.server
    if not (server.recycles and plan.app.serves_websockets):
        return []
    return [
        checks.Warning(
            f"MAX_REQUESTS ({server.max_requests}) recycles the workers of {server.backend}, which holds the "
            "WebSockets: a recycled worker closes every WebSocket it holds when it exits (all at once, unless a drain "
            "spreads the closes over a window), at a time no redeploy chose; their clients must reconnect and "
            "rejoin their groups.",
            hint="With split serving (WSGI_SERVER) the HTTP side recycles without touching a WebSocket; "
            "otherwise make the clients reconnect with a random delay, or leave MAX_REQUESTS unset.",
            id="deploykit.W016",
        )
    ]


def max_requests_not_supported(plan: Plan) -> list[checks.CheckMessage]:
    sides = [(s.backend, s.recycles) for s in (plan.server, plan.wsgi) if s is not None]
    never = [backend for backend, recycles in sides if not recycles]
    if plan.server.max_requests is None or not never:
        return []
    return [
        checks.Warning(
            f"MAX_REQUESTS is set, but {' and '.join(never)} counts no requests: its workers are never recycled "
            "(daphne has no such option; granian recycles by time or memory only).",
            hint=f"Use {', '.join(RECYCLING_SERVERS)} where workers must be recycled, or leave MAX_REQUESTS unset.",
            id="deploykit.W017",
        )
    ]
