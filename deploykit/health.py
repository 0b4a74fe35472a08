"""A readiness endpoint: the database and a channel-layer round trip.

Answered at the ASGI level, before Django's URL routing and ALLOWED_HOSTS,
because probes (systemd, Docker, Kubernetes) call it by IP address.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

ASGIApp = Any

#: Seconds each part may take before the probe reports it failing.
PART_TIMEOUT = 2.0


def _check_database() -> None:
    from django.db import connections

    for conn in connections.all(initialized_only=False):
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        # Probes come often; do not keep a connection per probe thread.
        conn.close_if_unusable_or_obsolete()


async def _check_channel_layer() -> str:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return "not configured"
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "deploykit.ready"})
    message = await layer.receive(channel)
    if message.get("type") != "deploykit.ready":
        raise RuntimeError(f"unexpected message {message!r}")
    return "ok"


async def readiness() -> tuple[int, dict[str, str]]:
    """(status code, body): 200 when every part works, 503 naming what failed."""
    body: dict[str, str] = {}
    failed = False
    try:
        await asyncio.wait_for(sync_to_async(_check_database, thread_sensitive=False)(), PART_TIMEOUT)
        body["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        failed = True
        body["database"] = f"error: {type(exc).__name__}: {exc}"
    try:
        body["channel_layer"] = await asyncio.wait_for(_check_channel_layer(), PART_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        failed = True
        body["channel_layer"] = f"error: {type(exc).__name__}: {exc}"
    body["status"] = "fail" if failed else "ok"
    return (503 if failed else 200), body


class ReadinessMiddleware:
    """Answers ``path`` (also under ``root_path``) and passes everything else on."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path", "") or ""
            if path == self.path or (root and path == root + self.path):
                status, body = await readiness()
                payload = json.dumps(body, sort_keys=True).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"cache-control", b"no-store"),
                            (b"content-length", str(len(payload)).encode()),
                        ],
                        "trailers": False,
                    }
                )
                await send({"type": "http.response.body", "body": payload, "more_body": False})
                return
        await self.app(scope, receive, send)
