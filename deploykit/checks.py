"""System checks for deployment mistakes Django's ``check --deploy`` misses.

Ids are stable and never reused; README lists them. Each check is a pure
function of the plan (plus the few settings the plan does not hold).
"""

from __future__ import annotations

import importlib.metadata
import itertools
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.core import checks
from django.utils.module_loading import import_string

from deploykit.conf import django_setting
from deploykit.exceptions import SpecError
from deploykit.plan import REDIS_DEFAULT_CAPACITY, REDIS_DEFAULT_GROUP_EXPIRY, Plan, app_routing, build_plan

TAG = "deploykit"


def _invalid(exc: SpecError) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"Invalid deployment setting: {exc}",
            hint=f"Fix {exc.setting}; every value that reaches a config file is validated.",
            id="deploykit.E001",
        )
    ]


def check_app_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 on plain ``check``: only the keys the running application reads.

    A typo in a deploy-only key (a container image, a port) must not block
    ``migrate`` or ``runserver``; ``check --deploy`` validates the whole plan.
    """
    try:
        app_routing()
    except SpecError as exc:
        return _invalid(exc)
    return []


def check_deploy(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every deploy check, on one plan built once for the run."""
    try:
        app_routing()
    except SpecError:
        return []  # E001 already reported by check_app_settings
    try:
        plan = build_plan()
    except SpecError as exc:
        return _invalid(exc)
    errors: list[checks.CheckMessage] = []
    for check in DEPLOY_CHECKS:
        errors.extend(check(plan))
    return errors


def runtime_failures(plan: Plan) -> list[checks.CheckMessage]:
    """The checks that predict a failure at run time: ``runasgi`` refuses to start on any of them."""
    found: list[checks.CheckMessage] = []
    for check in (
        in_memory_layer_across_processes,
        layer_missing,
        layer_disagrees,
        redis_read_timeout_below_blocking_pop,
        # Anyone who reaches the port could forge the client address: not started either.
        proxy_headers_trusted_from_anywhere,
    ):
        found.extend(check(plan))
    return found


def in_memory_layer_across_processes(plan: Plan) -> list[checks.CheckMessage]:
    processes = plan.server.total_processes * max(1, len(plan.site.upstream))
    if plan.channel_layer.kind == "memory" and processes > 1:
        return [
            checks.Error(
                f"The in-memory channel layer is used with {processes} server processes: group "
                "messages will not cross processes and are silently lost.",
                hint="Use channels_redis in CHANNEL_LAYERS (deployconfig channels writes it) or run one process.",
                id="deploykit.E002",
            )
        ]
    return []


def layer_missing(plan: Plan) -> list[checks.CheckMessage]:
    layer = plan.channel_layer
    if layer.kind == "none" and layer.redis_url is not None:
        return [
            checks.Error(
                'DEPLOYKIT["REDIS_URL"] is set but CHANNEL_LAYERS has no "default": the app runs without a '
                "channel layer (get_channel_layer() is None) and the first group_send fails. REDIS_URL only "
                "feeds `deployconfig channels`; CHANNEL_LAYERS is what runs.",
                hint="Add the CHANNEL_LAYERS that `manage.py deployconfig channels` prints to your settings.",
                id="deploykit.E005",
            )
        ]
    return []


def _netloc(url: str) -> tuple[str, int | None, str]:
    parts = urlsplit(url)
    return (parts.hostname or "", parts.port or (6379 if parts.scheme.startswith("redis") else None), parts.path)


def layer_disagrees(plan: Plan) -> list[checks.CheckMessage]:
    layer = plan.channel_layer
    if layer.redis_url is None or layer.kind == "none":
        return []
    wanted = _netloc(layer.redis_url)
    if layer.kind in ("redis", "pubsub") and any(_netloc(h)[:2] == wanted[:2] for h in layer.hosts):
        return []
    runs = ", ".join(layer.hosts) or f"sentinels {', '.join(f'{h}:{p}' for h, p in layer.sentinels)}"
    return [
        checks.Error(
            f'DEPLOYKIT["REDIS_URL"] names {wanted[0]}:{wanted[1]} but CHANNEL_LAYERS["default"] ({layer.backend}) '
            f"runs {runs}: the files deploykit writes (the unit's network allow list, Compose, Kubernetes) would "
            "follow one and the app the other.",
            hint='Make them agree: drop DEPLOYKIT["REDIS_URL"], or build CHANNEL_LAYERS from it.',
            id="deploykit.E006",
        )
    ]


def allowed_hosts_wildcard_with_websockets(plan: Plan) -> list[checks.CheckMessage]:
    hosts = django_setting("ALLOWED_HOSTS") or []
    if "*" in hosts and plan.app.websocket_routes is not None:
        return [
            checks.Error(
                "ALLOWED_HOSTS contains '*' and the WebSocket routes rely on AllowedHostsOriginValidator: "
                "it then accepts every Origin, so any web page can open a WebSocket with the user's cookies.",
                hint="List the site's host names in ALLOWED_HOSTS instead of '*'.",
                id="deploykit.E003",
            )
        ]
    return []


#: request.META headers our proxy templates set (nginx, apache, caddy: X-Forwarded-Proto: $scheme).
PROXY_SET_HEADERS = {
    "nginx": {"HTTP_X_FORWARDED_PROTO"},
    "apache": {"HTTP_X_FORWARDED_PROTO"},
    "caddy": {"HTTP_X_FORWARDED_PROTO"},
}


def ssl_header_not_set_by_proxy(plan: Plan) -> list[checks.CheckMessage]:
    header = plan.site.proxy_ssl_header
    if header is not None and header[0] not in PROXY_SET_HEADERS.get(plan.site.proxy, set()):
        return [
            checks.Error(
                f"SECURE_PROXY_SSL_HEADER names {header[0]}, which the {plan.site.proxy} config deploykit writes "
                "does not set: a client can send it and claim HTTPS.",
                hint='Use SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https"), which the proxy overwrites.',
                id="deploykit.E004",
            )
        ]
    return []


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


def redis_capacity_default(plan: Plan) -> list[checks.CheckMessage]:
    layer = plan.channel_layer
    # Group broadcasts fan out into every member's channel: 100 messages queue up quickly.
    if layer.kind in ("redis", "sentinel") and layer.capacity is None and plan.app.websocket_routes is not None:
        return [
            checks.Warning(
                f"channels_redis capacity is left at its default ({REDIS_DEFAULT_CAPACITY}) while the app "
                "broadcasts to groups: a slow consumer's channel fills and group_send drops messages silently.",
                hint=f'Set CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] (deployconfig channels writes '
                f"{layer.recommended_capacity}).",
                id="deploykit.W002",
            )
        ]
    return []


def group_expiry_below_lifetime(plan: Plan) -> list[checks.CheckMessage]:
    layer = plan.channel_layer
    expiry = layer.group_expiry or REDIS_DEFAULT_GROUP_EXPIRY
    if layer.kind in ("redis", "sentinel") and expiry < plan.server.websocket_lifetime:
        return [
            checks.Warning(
                f"group_expiry ({expiry}s) is below the WebSocket lifetime ({plan.server.websocket_lifetime}s): "
                "long-lived connections silently drop out of their groups.",
                hint='Raise CHANNEL_LAYERS["default"]["CONFIG"]["group_expiry"] or lower '
                'DEPLOYKIT["WEBSOCKET_LIFETIME"].',
                id="deploykit.W003",
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


def proxy_read_timeout_not_above_ping(plan: Plan) -> list[checks.CheckMessage]:
    timeout, ping = plan.site.proxy_read_timeout, plan.server.websocket_ping_interval
    if timeout <= ping:
        return [
            checks.Warning(
                f"The proxy read timeout ({timeout}s) is not above the WebSocket ping interval ({ping}s): "
                "the proxy closes idle WebSockets between pings.",
                hint='Raise DEPLOYKIT["PROXY_READ_TIMEOUT"] (or leave it unset: deploykit derives it) or lower '
                "WEBSOCKET_PING_INTERVAL.",
                id="deploykit.W005",
            )
        ]
    return []


def _origin_trusted(origin: str, trusted: list[str]) -> bool:
    scheme, _, host = origin.partition("://")
    for entry in trusted:
        t_scheme, _, t_host = str(entry).partition("://")
        if t_scheme != scheme:
            continue
        if t_host == host or (t_host.startswith("*.") and (host.endswith(t_host[1:]) or host == t_host[2:])):
            return True
    return False


def csrf_trusted_origins_missing(plan: Plan) -> list[checks.CheckMessage]:
    if plan.site.tls is None:
        return []
    port = "" if plan.site.https_port == 443 else f":{plan.site.https_port}"
    trusted = list(django_setting("CSRF_TRUSTED_ORIGINS") or [])
    missing = []
    for name in plan.site.server_names:
        host = "*" + name if name.startswith(".") else name
        host = f"[{host}]" if ":" in host else host
        origin = f"https://{host}{port}"
        if not _origin_trusted(origin, trusted):
            missing.append(origin)
    if missing:
        return [
            checks.Warning(
                f"CSRF_TRUSTED_ORIGINS lacks the site's https origins: {', '.join(missing)}.",
                hint=f"Add them: CSRF_TRUSTED_ORIGINS = {missing!r} (plus any you already trust).",
                id="deploykit.W006",
            )
        ]
    return []


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, None if it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def sync_only_middleware(plan: Plan) -> list[checks.CheckMessage]:
    sync_only = []
    for path in django_setting("MIDDLEWARE") or []:
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


def relative_static_url_under_sub_path(plan: Plan) -> list[checks.CheckMessage]:
    if not plan.site.root_path:
        return []
    relative = [
        name
        for name in ("STATIC_URL", "MEDIA_URL")
        if (url := django_setting(name)) and not str(url).startswith(("/", "http://", "https://", "//"))
    ]
    if relative:
        return [
            checks.Warning(
                f"{' and '.join(relative)} relative while the site is under {plan.site.root_path}: Django "
                "caches the prefixed URL on first access, which under ASGI can happen before a request sets the "
                "script prefix, so pages link /static/... where the proxy serves "
                f"{plan.site.root_path}/static/ (seen in the end-to-end suite).",
                hint=f'Write them absolute: STATIC_URL = "{plan.site.root_path}/static/".',
                id="deploykit.W008",
            )
        ]
    return []


def redis_read_timeout_below_blocking_pop(plan: Plan) -> list[checks.CheckMessage]:
    """redis-py 8 reads with a 5 s socket timeout, channels_redis blocks 5 s in BZPOPMIN."""
    version = installed_version("redis")
    if version is None or _release(version) < (8,):
        return []
    from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]

    # How long channels_redis blocks in BZPOPMIN: a read timeout must exceed it.
    blocking_pop: int = RedisChannelLayer.brpop_timeout
    layer = plan.channel_layer
    # None: no read timeout (what deploykit writes); "default": redis-py's 5 s.
    bare = layer.kind in ("redis", "sentinel") and any(
        t is not None and (t == "default" or t <= blocking_pop) for t in layer.read_timeouts
    )
    if bare:
        return [
            checks.Warning(
                f'CHANNEL_LAYERS["default"] uses redis-py {version} with a read timeout at or below channels_redis\'s '
                f"{blocking_pop} s blocking pop (redis-py's default is 5 s), so every consumer idle for "
                f"{blocking_pop} s crashes and drops its WebSocket (channels_redis#422).",
                hint='Give each host as {"address": URL, "socket_timeout": None} (deployconfig channels writes it).',
                id="deploykit.W009",
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


DEPLOY_CHECKS = [
    in_memory_layer_across_processes,
    allowed_hosts_wildcard_with_websockets,
    ssl_header_not_set_by_proxy,
    proxy_headers_trusted_from_anywhere,
    redis_capacity_default,
    group_expiry_below_lifetime,
    graceful_timeout_not_below_stop_timeout,
    proxy_read_timeout_not_above_ping,
    csrf_trusted_origins_missing,
    sync_only_middleware,
    relative_static_url_under_sub_path,
    redis_read_timeout_below_blocking_pop,
    layer_missing,
    layer_disagrees,
    socket_outside_runtime_directory,
]


def register() -> None:
    checks.register(check_app_settings, TAG)
    checks.register(check_deploy, TAG, deploy=True)
