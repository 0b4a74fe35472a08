from __future__ import annotations

from pathlib import Path

from deploykit.exceptions import SpecError
from deploykit.plan import IN_MEMORY_BACKEND, PLATFORMS, REDIS_BACKEND
from deploykit.targets.base import Target
from deploykit.targets.pyfile import check_python, literal

#: redis-py's read timeout: none. channels_redis blocks 5 s in BZPOPMIN, so a
#: timeout at or below 5 s crashes idle consumers (channels_redis#422), and any
#: finite one makes a cancelled receive hang until the next message arrives: 30
#: of 150 cancellations under message flow with 10 s, 0 of 150 with None
#: (redis-py 8.1, channels_redis 4.3), so graceful restarts used the whole
#: timeout. redis-py 8 keeps TCP keepalive on, so a vanished Redis still fails.
REDIS_SOCKET_TIMEOUT = None
#: redis-py's pool per host and process: a restarted server's clients all rejoin their groups at once, and
#: redis-py 8's default of 100 raises MaxConnectionsError past it (W019).
RECOMMENDED_POOL_SIZE = 1000


class Channels(Target):
    name = "channels"
    # Files of the project itself: a platform needs them as much as a host.
    platforms = frozenset(PLATFORMS)
    description = "CHANNEL_LAYERS for settings.py: in-memory, Redis URL, Sentinel or pub/sub, with capacity"
    template = "deploykit/channels/channel_layers.py-tpl"
    file_name = "channel_layers.py"

    def context(self) -> dict[str, object]:
        layer = self.plan.channel_layer
        hosts: tuple[str, ...]
        if layer.redis_url is not None:
            # DEPLOYKIT["REDIS_URL"] feeds this file only; what runs is the CHANNEL_LAYERS it becomes.
            kind, backend, hosts = "redis", REDIS_BACKEND, (layer.redis_url,)
        elif layer.kind in ("none", "memory"):
            kind, backend, hosts = "memory", IN_MEMORY_BACKEND, ()
        elif layer.is_redis:
            kind, backend, hosts = layer.kind, layer.backend, layer.hosts
        else:
            raise SpecError(
                'CHANNEL_LAYERS["default"]["BACKEND"]',
                layer.backend,
                "is not channels_redis: deployconfig channels writes channels_redis layers only; keep your own "
                '(or set DEPLOYKIT["REDIS_URL"] to write a Redis one)',
            )
        return {
            "plan": self.plan,
            "layer": layer,
            "kind": kind,
            # Python literals for the .py file.
            "backend": literal(backend),
            "hosts": [literal(h) for h in hosts],
            "sentinels": [f"({literal(host)}, {port})" for host, port in layer.sentinels],
            "master_name": literal(layer.master_name),
            "socket_timeout": literal(REDIS_SOCKET_TIMEOUT),
            "max_connections": RECOMMENDED_POOL_SIZE,
        }

    def applies(self) -> bool:
        # A layer deploykit does not write (RabbitMQ, PostgreSQL, your own) is left alone.
        layer = self.plan.channel_layer
        return layer.redis_url is not None or layer.is_redis or layer.kind in ("none", "memory")

    def validate(self, content: str, workdir: Path) -> None:
        check_python(content, self.filename)
