from __future__ import annotations

from pathlib import Path

from deploykit.plan import IN_MEMORY_BACKEND
from deploykit.targets.base import Target
from deploykit.targets.pyfile import check_python, literal

#: Seconds redis-py waits on a read: above channels_redis's 5 s BZPOPMIN block.
REDIS_SOCKET_TIMEOUT = 10


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
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        }

    def validate(self, content: str, workdir: Path) -> None:
        check_python(content, self.filename)
