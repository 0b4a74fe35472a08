"""A readiness endpoint: the database and a channel-layer round trip.

Answered at the ASGI level, before Django's URL routing and ALLOWED_HOSTS,
because probes (systemd, Docker, Kubernetes) call it by IP address.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from deploykit import drainfile, serverenv

ASGIApp = Any

logger = logging.getLogger(__name__)

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
    """(status code, what each part said): 200 when every part works, 503 otherwise."""
    parts: dict[str, str] = {}
    failed = False
    try:
        await asyncio.wait_for(sync_to_async(_check_database, thread_sensitive=False)(), PART_TIMEOUT)
        parts["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        failed = True
        parts["database"] = f"error: {type(exc).__name__}: {exc}"
    try:
        parts["channel_layer"] = await asyncio.wait_for(_check_channel_layer(), PART_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        failed = True
        parts["channel_layer"] = f"error: {type(exc).__name__}: {exc}"
    return (503 if failed else 200), parts


async def answer(drain_file: str | None) -> tuple[int, bytes]:
    """(status, JSON body) for a probe: 503 "draining" while this process drains, else the checks' verdict."""
    if drain_file and drainfile.began(drain_file) is not None:
        return 503, json.dumps({"status": "draining"}).encode()
    status, parts = await readiness()
    if status != 200:
        detail = ", ".join(f"{name}: {said}" for name, said in sorted(parts.items()))
        logger.warning("readiness %d: %s", status, detail)
    return status, json.dumps({"status": "ok" if status == 200 else "fail"}).encode()


#: Methods the endpoint answers; the rest get 405 before any check runs.
METHODS = ("GET", "HEAD")


class ReadinessMiddleware:
    """Answers ``path`` (also under ``root_path``) and passes everything else on.

    The body is the status only (``{"status": "ok"}`` / ``{"status": "fail"}``):
    an error message names hosts, ports and database users, and the caller may
    be anyone the proxy lets through. What failed goes to the log, logger
    ``deploykit.health`` (issue 14 item 1).
    """

    def __init__(self, app: ASGIApp, path: str, drain_file: str | None = None) -> None:
        self.app = app
        self.path = path
        # This process's drain file (the server's environment): 503 once it drains, so the load balancer
        # and Kubernetes send nothing new to a process that is closing its WebSockets.
        self.drain_file = serverenv.read().drain_file if drain_file is None else drain_file

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path", "") or ""
            if path == self.path or (root and path == root + self.path):
                await self.answer(scope["method"], send)
                return
        await self.app(scope, receive, send)

    async def answer(self, method: str, send: ASGISendCallable) -> None:
        headers = [(b"cache-control", b"no-store")]
        if method not in METHODS:
            status, payload = 405, b""
            headers.append((b"allow", ", ".join(METHODS).encode()))
        else:
            status, payload = await answer(self.drain_file)
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers, "trailers": False})
        # HEAD: the GET's headers (its length too), no body.
        body = b"" if method == "HEAD" else payload
        await send({"type": "http.response.body", "body": body, "more_body": False})


def wrap(app: ASGIApp, env: serverenv.ServerEnvironment) -> ASGIApp:
    """``app`` behind the readiness endpoint the server's environment names (the server's wrappers' part).

    The application may be the project's own ``ProtocolTypeRouter`` (the Channels tutorial's asgi.py), which
    answers nothing there: ``manage.py redeploy`` and a container's probes would wait for it forever.
    """
    if env.health_path is None:
        return app
    return ReadinessMiddleware(app, env.health_path, env.drain_file)
