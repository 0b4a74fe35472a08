"""The uvicorn worker gunicorn runs, with the plan's WebSocket settings.

gunicorn's argv has no flags for uvicorn's WebSocket options, and
``uvicorn_worker.UvicornWorker`` builds uvicorn's Config from gunicorn's own
settings only: WEBSOCKET_MAX_SIZE, the ping interval and timeout, compression
and the root path would silently be uvicorn's defaults (16 MiB messages, not
the plan's; permessage-deflate on).
This worker adds them from the plan, built in the gunicorn process from the
same settings (``DJANGO_SETTINGS_MODULE``), as ``deploykit.proxy`` does.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker  # type: ignore[import-untyped]

from deploykit.plan import Server
from deploykit.servers.base import plan_in_server


def config_kwargs(server: Server) -> dict[str, Any]:
    """uvicorn Config arguments for what gunicorn cannot pass (the uvicorn backend's flags of the same name)."""
    return {
        "lifespan": "on",
        "root_path": server.root_path,
        "ws_max_size": server.websocket_max_size,
        "ws_ping_interval": float(server.websocket_ping_interval),
        "ws_ping_timeout": float(server.websocket_ping_timeout),
        "ws_per_message_deflate": server.websocket_compression,
    }


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]  # untyped base
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read by the base __init__ when it builds uvicorn's Config.
        self.CONFIG_KWARGS = {**_UvicornWorker.CONFIG_KWARGS, **config_kwargs(plan_in_server().server)}
        super().__init__(*args, **kwargs)
