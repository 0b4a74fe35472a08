"""Checks on the channel layer: the one that runs (CHANNEL_LAYERS) against the deployment."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core import checks

from deploykit.checks.versions import installed_version, release
from deploykit.exceptions import shown
from deploykit.plan import REDIS_DEFAULT_CAPACITY, REDIS_DEFAULT_GROUP_EXPIRY, Plan
from deploykit.targets.channels import RECOMMENDED_POOL_SIZE


def in_memory_layer_across_processes(plan: Plan) -> list[checks.CheckMessage]:
    # The one rule (ChannelLayer.crosses_processes) that the default worker count follows too.
    processes = plan.server.total_processes * max(1, len(plan.site.upstream))
    if not plan.channel_layer.crosses_processes and processes > 1:
        which = "The in-memory channel layer is" if plan.channel_layer.kind == "memory" else "No channel layer is"
        return [
            checks.Error(
                f"{which} used with {processes} server processes: group "
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


#: Names of this machine's loopback: "localhost" and 127.0.0.1 are the same Redis.
_LOOPBACK = {"localhost": "127.0.0.1", "ip6-localhost": "::1"}


def _netloc(url: str) -> tuple[str, int | None, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return (_LOOPBACK.get(host, host), parts.port or (6379 if parts.scheme.startswith("redis") else None), parts.path)


def layer_disagrees(plan: Plan) -> list[checks.CheckMessage]:
    layer = plan.channel_layer
    if layer.redis_url is None or layer.kind == "none":
        return []
    wanted = _netloc(layer.redis_url)
    if layer.kind in ("redis", "pubsub") and any(_netloc(h)[:2] == wanted[:2] for h in layer.hosts):
        return []
    # Hosts as the messages show values: a password in a URL never reaches the terminal.
    runs = (
        ", ".join(shown("CHANNEL_LAYERS", h).strip("'") for h in layer.hosts)
        or f"sentinels {', '.join(f'{h}:{p}' for h, p in layer.sentinels)}"
    )
    return [
        checks.Error(
            f'DEPLOYKIT["REDIS_URL"] names {wanted[0]}:{wanted[1]} but CHANNEL_LAYERS["default"] ({layer.backend}) '
            f"runs {runs}: the files deploykit writes (the unit's network allow list, Compose, Kubernetes) would "
            "follow one and the app the other.",
            hint='Make them agree: drop DEPLOYKIT["REDIS_URL"], or build CHANNEL_LAYERS from it.',
            id="deploykit.E006",
        )
    ]


def redis_capacity_default(plan: Plan) -> list[checks.CheckMessage]:
    layer = plan.channel_layer
    # Group broadcasts fan out into every member's channel: 100 messages queue up quickly.
    if layer.kind in ("redis", "sentinel") and layer.capacity is None and plan.app.serves_websockets:
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


def redis_read_timeout_below_blocking_pop(plan: Plan) -> list[checks.CheckMessage]:
    """redis-py 8 reads with a 5 s socket timeout, channels_redis blocks 5 s in BZPOPMIN."""
    version = installed_version("redis")
    if version is None or release(version) < (8,):
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


def default_pool_size() -> int | None:
    """How many connections redis-py's asyncio pool holds when a host does not say (None: unbounded, or no
    redis-py). Asked of redis-py itself: 8 bounds it at 100 and raises MaxConnectionsError past it."""
    try:
        from redis.asyncio import ConnectionPool
    except ImportError:
        return None
    size = ConnectionPool().max_connections  # builds no connection
    return size if size < 2**31 - 1 else None


def redis_pool_left_at_bounded_default(plan: Plan) -> list[checks.CheckMessage]:
    """A reconnect burst (every client of a restarted server at once) needs a connection per group_add."""
    layer = plan.channel_layer
    if not layer.is_redis or "default" not in layer.pool_sizes:
        return []
    size = default_pool_size()
    if size is None:
        return []
    return [
        checks.Warning(
            f"CHANNEL_LAYERS[\"default\"] leaves a Redis host's connection pool at redis-py's default of {size}, "
            "which raises MaxConnectionsError past it: when a restart or redeploy sends every client back at "
            "once, the connects beyond it fail.",
            hint=f'Give each host "max_connections" (deployconfig channels writes {RECOMMENDED_POOL_SIZE}).',
            id="deploykit.W019",
        )
    ]
