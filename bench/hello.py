"""A bare ASGI hello-world (no Django): the proxy's own overhead on a fast backend, stack (e)."""

from __future__ import annotations

import json
import os
from typing import Any, cast

from deploykit.routing import lifespan

_BODY = json.dumps({"hello": "world", "pid": os.getpid()}).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        # The server runs with --lifespan on, as in stack (a); deploykit's answer has no Django in it.
        await lifespan(cast(Any, scope), receive, send)
        return
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})
