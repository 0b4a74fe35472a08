"""The plan: one immutable, validated description of the deployment.

:func:`build_plan` reads settings (through :mod:`deploykit.conf`) and
command-line overrides, validates every value once, and returns a
:class:`Plan`. Everything downstream (config targets, server backends, system
checks) is a pure function of the plan and never reads settings again, so the
socket nginx connects to is by construction the socket the server binds.

One module per section: :mod:`.app`, :mod:`.layer`, :mod:`.process`,
:mod:`.server` (and its binds), :mod:`.site`, :mod:`.container`; the
dataclasses are in :mod:`.model`, the settings reader in :mod:`.reader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from deploykit.plan.app import build_app, routing
from deploykit.plan.container import build_container
from deploykit.plan.layer import build_channel_layer
from deploykit.plan.metrics import CONTAINER_DIRECTORY, build_metrics
from deploykit.plan.model import (
    CONTAINER_UID,
    CONTAINER_VIRTUALENV,
    CONTAINER_WORKDIR,
    IN_MEMORY_BACKEND,
    LOG_FORMATS,
    LOG_LEVELS,
    PLATFORMS,
    PROCESS_MANAGERS,
    PROXIES,
    PUBSUB_BACKEND,
    REDIS_BACKEND,
    REDIS_DEFAULT_CAPACITY,
    REDIS_DEFAULT_GROUP_EXPIRY,
    SERVERS,
    TLS,
    WSGI_SERVERS,
    App,
    Bind,
    ChannelLayer,
    Container,
    Metrics,
    Plan,
    Platform,
    ProcessManager,
    Server,
    Site,
    Slot,
    WsgiServer,
    bracket,
    is_ip,
)
from deploykit.plan.platform import build_platform
from deploykit.plan.process import build_process_manager, ip_address_allow
from deploykit.plan.processes import build_processes
from deploykit.plan.reader import Reader
from deploykit.plan.server import build_server
from deploykit.plan.site import build_site
from deploykit.plan.slots import build_slots, upstream_file
from deploykit.plan.wsgi import build_wsgi


def build_plan(overrides: Mapping[str, Any] | None = None, labels: Mapping[str, str] | None = None) -> Plan:
    """Resolve settings (and ``overrides``, keyed like ``DEPLOYKIT``) into a validated :class:`Plan`.

    ``labels`` maps an override key to the name shown in errors (``--workers``).
    Raises :class:`~deploykit.exceptions.SpecError` on the first invalid value.
    """
    r = Reader(overrides or {}, labels or {})
    r.check_known_keys()
    notes: list[str] = []
    app = build_app(r)
    layer = build_channel_layer(r, notes)
    pm = build_process_manager(r, app)
    server = build_server(r, app, pm, layer, notes)
    pm = replace(pm, ip_address_allow=ip_address_allow(r, server, layer, app))
    wsgi = build_wsgi(r, app, pm, server, notes)
    if wsgi is not None:
        wsgi = replace(wsgi, ip_address_allow=ip_address_allow(r, wsgi, layer, app))
    metrics = build_metrics(r, pm, server, wsgi, notes)
    site = build_site(r, server)
    slots = build_slots(r, app, pm, server, wsgi is not None, layer)
    container = build_container(r, app, layer)
    processes = build_processes(r, pm, layer, has_static=site.static_root is not None)
    platform = build_platform(r, server, layer, wsgi is not None, notes)
    inner = build_metrics(r, container.process_manager, container.server, None, [], directory=CONTAINER_DIRECTORY)
    container = replace(container, metrics=inner)
    return Plan(
        site=site,
        server=server,
        process_manager=pm,
        channel_layer=layer,
        app=app,
        container=container,
        wsgi=wsgi,
        platform=platform,
        processes=processes,
        notes=tuple(notes),
        slots=slots,
        upstream_file=upstream_file(r, app, site.proxy) if slots else None,
        metrics=metrics,
    )


def app_routing() -> tuple[str | None, str | None]:
    """(WEBSOCKET_ROUTES, HEALTH_PATH), validated: all that the running application reads."""
    return routing(Reader({}, {}))


__all__ = [
    "CONTAINER_UID",
    "CONTAINER_VIRTUALENV",
    "CONTAINER_WORKDIR",
    "IN_MEMORY_BACKEND",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "PLATFORMS",
    "PROCESS_MANAGERS",
    "PROXIES",
    "PUBSUB_BACKEND",
    "REDIS_BACKEND",
    "REDIS_DEFAULT_CAPACITY",
    "REDIS_DEFAULT_GROUP_EXPIRY",
    "SERVERS",
    "TLS",
    "WSGI_SERVERS",
    "App",
    "Bind",
    "ChannelLayer",
    "Container",
    "Metrics",
    "Plan",
    "Platform",
    "ProcessManager",
    "Server",
    "Site",
    "Slot",
    "WsgiServer",
    "app_routing",
    "bracket",
    "build_plan",
    "is_ip",
]
