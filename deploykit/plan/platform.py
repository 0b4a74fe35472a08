"""The platform section (PLATFORM): a PaaS whose router is the proxy and which hands the port in $PORT.

Heroku, Render and Fly run the web process behind their own router, with no nginx, systemd or
supervisor of ours: what the plan says about those does not apply there, and the Procfile,
render.yaml and fly.toml say instead how the same server runs on the platform.
"""

from __future__ import annotations

from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan.container import CONTAINER_TRUSTED_PROXIES
from deploykit.plan.model import PLATFORMS, Bind, ChannelLayer, Platform, Server
from deploykit.plan.reader import Reader
from deploykit.plan.server import forwarded_allow_ips

#: Whom the server trusts for X-Forwarded-For/-Proto on a platform: its router reaches the instance
#: over the platform's private network (Heroku's and Render's routers, Fly's proxy), and the port is
#: reachable from nothing else. Private networks, not ``*``: with ``*`` uvicorn takes the leftmost
#: X-Forwarded-For entry, which the client writes (the routers append theirs). The same fact as the
#: container plan's trust, so it is that one.
PLATFORM_TRUSTED_PROXIES = CONTAINER_TRUSTED_PROXIES


#: Settings whose default is right on any machine (BASE_DIR, sys.prefix) and whose set value is one host's.
HOST_PATHS = ("VIRTUALENV", "WORKING_DIRECTORY")


def build_platform(r: Reader, server: Server, layer: ChannelLayer, has_wsgi: bool, notes: list[str]) -> Platform:
    kind = r.get("PLATFORM")
    if kind is None:
        return Platform()
    kind = v.choice(kind, r.label("PLATFORM"), PLATFORMS)
    if r.get("FD") is not None:
        raise SpecError(r.label("FD"), r.get("FD"), f"{kind} hands the web process a port ($PORT), not a socket")
    allow: tuple[str, ...] = ()
    if server.proxy_headers:
        if r.get("FORWARDED_ALLOW_IPS") is None:
            allow = PLATFORM_TRUSTED_PROXIES
        else:
            allow = forwarded_allow_ips(r, Bind("tcp", host="0.0.0.0", port=8000))
    workers: int | None = None
    if server.backend != "daphne" and layer.crosses_processes:
        # os.cpu_count() here is this machine's, not the dyno's: the platform's WEB_CONCURRENCY
        # (Heroku sets it from the dyno size) wins, then WORKERS, then one per instance.
        configured = r.get("WORKERS")
        workers = 1 if configured is None else server.workers
    if has_wsgi:
        notes.append(
            f"{kind}: one web process type on one $PORT, and no proxy of ours to choose by the Upgrade header: "
            "the ASGI server serves HTTP too there (runasgi --role websocket)"
        )
    host_paths = tuple(key for key in HOST_PATHS if r.get(key) is not None)
    return Platform(kind=kind, forwarded_allow_ips=allow, web_workers=workers, host_paths=host_paths)
