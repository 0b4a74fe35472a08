"""hypercorn's ``--config python:deploykit.servers.hypercorn_config``: what its command line cannot carry.

hypercorn has no flag for the WebSocket message limit, so without this it
would accept its own default, 16 MiB messages, whatever WEBSOCKET_MAX_SIZE
says; and its jitter flag sets the wrong value (MAX_REQUESTS_JITTER). hypercorn
imports this module and takes its public names as settings;
the value comes from the server's environment, which the hypercorn backend
writes next to its argv (:mod:`deploykit.serverenv`). Only hypercorn imports it.
"""

from __future__ import annotations

from deploykit import serverenv

_env = serverenv.read()
if _env.ws_max_size is not None:
    websocket_max_message_size = _env.ws_max_size
if _env.max_requests_jitter is not None:
    # hypercorn 0.18's --max-requests-jitter flag sets the jitter to --max-requests (its __main__.py).
    max_requests_jitter = _env.max_requests_jitter
