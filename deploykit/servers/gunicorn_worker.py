"""The uvicorn worker gunicorn runs, with the plan's WebSocket settings.

gunicorn's argv has no flags for uvicorn's WebSocket options or root path, and
``uvicorn_worker.UvicornWorker`` builds uvicorn's Config from gunicorn's own
settings only: WEBSOCKET_MAX_SIZE, the pings and compression would silently
be uvicorn's defaults (16 MiB messages, permessage-deflate on). This worker
adds them from the server's environment, which the gunicorn backend writes
next to its argv (:mod:`deploykit.serverenv`).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker  # type: ignore[import-untyped]

from deploykit import serverenv


def config_kwargs(env: serverenv.ServerEnvironment) -> dict[str, Any]:
    """uvicorn Config arguments for what gunicorn cannot pass (the uvicorn backend's flags of the same name)."""
    # "auto": an application without a lifespan handler (a Channels
    # ProtocolTypeRouter as the docs write it) still starts; "on" kills it.
    kwargs: dict[str, Any] = {"lifespan": "auto"}
    optional = {
        "ws_max_size": env.ws_max_size,
        "ws_ping_interval": env.ws_ping_interval,
        "ws_ping_timeout": env.ws_ping_timeout,
        "ws_per_message_deflate": env.ws_per_message_deflate,
    }
    kwargs.update({k: val for k, val in optional.items() if val is not None})
    return kwargs


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]  # untyped base
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read by the base __init__ when it builds uvicorn's Config.
        self.CONFIG_KWARGS = {**_UvicornWorker.CONFIG_KWARGS, **config_kwargs(serverenv.read())}
        super().__init__(*args, **kwargs)
