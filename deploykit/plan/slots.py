"""The slots section (issue 16): two instances of the app, each on its own sockets and runtime directory.

Off unless DEPLOYKIT["SLOTS"] names two slots. Each slot's servers are resolved
by the same resolvers as the plan's own (build_server, build_wsgi), over the
settings with the slot's address put in, so a slot differs from the plan in
its addresses, service name and runtime directory only. ``manage.py redeploy``
starts the idle slot, switches the proxy's upstream file to it and drains the
live one; the upstream file says which slot is live (one source of truth).
"""

from __future__ import annotations

from dataclasses import replace

from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan.model import App, ChannelLayer, ProcessManager, Server, Slot
from deploykit.plan.process import ip_address_allow
from deploykit.plan.reader import Reader
from deploykit.plan.server import build_server
from deploykit.plan.wsgi import build_wsgi

#: Where each proxy's upstream file goes by default: beside its own configuration, outside the folders
#: the packaged configuration includes by itself (the site includes it, nothing else).
UPSTREAM_FILES = {
    "nginx": "/etc/nginx/{name}-upstream.conf",
    "apache": "/etc/apache2/{name}-upstream.conf",
    "caddy": "/etc/caddy/{name}-upstream.caddy",
}


def slot_names(r: Reader) -> tuple[str, ...]:
    value = r.get("SLOTS")
    if value is None:
        return ()
    label = r.label("SLOTS")
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) != 2 or len(set(value)) != 2:
        raise SpecError(label, value, "must be two different names, e.g. ('blue', 'green')")
    return tuple(v.identifier(name, label) for name in value)


def upstream_file(r: Reader, app: App, proxy: str) -> str:
    path = r.get("UPSTREAM_FILE")
    if path is None:
        return UPSTREAM_FILES[proxy].format(name=app.name)
    return v.absolute_path(path, r.label("UPSTREAM_FILE"))


def _slot_path(path: str, runtime: str, slot_runtime: str, slot: str) -> str:
    """The slot's socket: in the slot's runtime directory (systemd removes a unit's own at stop), its name
    suffixed; a socket outside the runtime directory stays in its folder, its name suffixed."""
    folder, _, file = path.rpartition("/")
    stem, dot, suffix = file.rpartition(".")
    file = f"{stem}-{slot}.{suffix}" if dot else f"{file}-{slot}"
    if folder == runtime.rstrip("/"):
        folder = slot_runtime
    return f"{folder}/{file}"


def build_slots(
    r: Reader, app: App, pm: ProcessManager, server: Server, wsgi_enabled: bool, layer: ChannelLayer
) -> tuple[Slot, ...]:
    names = slot_names(r)
    if not names:
        return ()
    if app.health_path is None:
        raise SpecError(
            r.label("SLOTS"),
            names,
            'needs DEPLOYKIT["HEALTH_PATH"]: redeploy switches to a slot only once its readiness endpoint answers 200',
        )
    slots = []
    # TCP: each slot's ports follow the previous slot's (its ASGI ports, then its WSGI port).
    stride = server.processes + (1 if wsgi_enabled else 0)
    for index, name in enumerate(names):
        service = v.identifier(f"{app.name}-{name}", r.label("SLOTS") + " (NAME-SLOT: the slot's service)")
        runtime = f"{pm.runtime_directory.rstrip('/')}-{name}"
        first = server.address
        if first.kind == "tcp":
            address: dict[str, object] = {"BIND": f"{first.host}:{first.port + index * stride}"}
        else:
            address = {"SOCKET": _slot_path(first.path, pm.runtime_directory, runtime, name)}
        slot_reader = r.derive(address, unset=("SOCKET", "BIND"))
        slot_pm = replace(pm, name=service, runtime_directory=runtime)
        slot_server = build_server(slot_reader, app, slot_pm, layer, [])
        slot_wsgi = build_wsgi(slot_reader, replace(app, name=service), slot_pm, slot_server, [])
        if slot_wsgi is not None:
            slot_wsgi = replace(slot_wsgi, ip_address_allow=ip_address_allow(slot_reader, slot_wsgi, layer, app))
        slots.append(Slot(name=name, service=service, runtime_directory=runtime, server=slot_server, wsgi=slot_wsgi))
    return tuple(slots)
