"""hypercorn's ``--config python:deploykit.servers.hypercorn_config``: what its command line cannot carry.

hypercorn has no flag for the WebSocket message limit, so without this it
would accept its own default, 16 MiB messages, whatever WEBSOCKET_MAX_SIZE
says. hypercorn imports this module and takes its public names as settings;
the value comes from the server's environment, which the hypercorn backend
writes next to its argv (:mod:`deploykit.serverenv`). Only hypercorn imports it.
"""

from __future__ import annotations

from deploykit import serverenv

_size = serverenv.read().ws_max_size
if _size is not None:
    websocket_max_message_size = _size
