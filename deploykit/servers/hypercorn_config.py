"""hypercorn's ``--config python:deploykit.servers.hypercorn_config``: what its command line cannot carry.

hypercorn has no flag for the WebSocket message limit, so without this it
would accept its own default, 16 MiB messages, whatever WEBSOCKET_MAX_SIZE says.
hypercorn imports this module and takes its public names as settings; the
values come from the plan, built from the same settings (``DJANGO_SETTINGS_MODULE``),
as ``deploykit.proxy`` does. Only hypercorn imports it.
"""

from __future__ import annotations


def _settings() -> dict[str, object]:
    from deploykit.servers.base import plan_in_server

    server = plan_in_server().server
    return {"websocket_max_message_size": server.websocket_max_size}


globals().update(_settings())
