from __future__ import annotations

from pathlib import Path

from deploykit.plan import IN_MEMORY_BACKEND
from deploykit.targets.base import Target
from deploykit.targets.pyfile import check_python, literal

#: redis-py's read timeout: none. channels_redis blocks 5 s in BZPOPMIN, so a
#: timeout at or below 5 s crashes idle consumers (channels_redis#422), and any
#: finite one makes a cancelled receive hang until the next message arrives: 30
#: of 150 cancellations under message flow with 10 s, 0 of 150 with None
#: (redis-py 8.1, channels_redis 4.3), so graceful restarts used the whole
#: timeout. redis-py 8 keeps TCP keepalive on, so a vanished Redis still fails.
REDIS_SOCKET_TIMEOUT = None


class Channels(Target):
    name = "channels"
    description = "CHANNEL_LAYERS for settings.py: in-memory, Redis URL, Sentinel or pub/sub, with capacity"
    template = "deploykit/channels/channel_layers.py-tpl"
    filename = "channel_layers.py"

    def context(self) -> dict[str, object]:
        layer = self.plan.channel_layer
        return {
            "plan": self.plan,
            "layer": layer,
            "kind": "memory" if layer.kind == "none" else layer.kind,
            # Python literals for the .py file.
            "backend": literal(layer.backend or IN_MEMORY_BACKEND),
            "hosts": [literal(h) for h in layer.hosts],
            "sentinels": [f"({literal(host)}, {port})" for host, port in layer.sentinels],
            "master_name": literal(layer.master_name),
            "socket_timeout": literal(REDIS_SOCKET_TIMEOUT),
        }

    def validate(self, content: str, workdir: Path) -> None:
        check_python(content, self.filename)
