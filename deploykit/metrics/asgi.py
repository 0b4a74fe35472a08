"""Counting at the ASGI level, and the METRICS_PATH answer."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGIReceiveEvent, ASGISendCallable, ASGISendEvent, Scope

from deploykit.metrics import exposition, layer, store

ASGIApp = Any

logger = logging.getLogger("deploykit.metrics")

#: Methods the endpoint answers; the rest get 405.
METHODS = ("GET", "HEAD")


class MetricsMiddleware:
    """Counts HTTP responses and WebSockets of ``app`` and answers ``path`` (also under ``root_path``).

    The process's counter file is made on first use, in the worker (servers fork
    or spawn their workers after importing the application).
    """

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        directory: str,
        granian_port: int | None = None,
        *,
        read: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.path = path
        self.directory = directory
        #: Other services' counter folders summed in (split serving: the WSGI server's).
        self.read = read
        self.granian_port = granian_port
        self.store: store.Store | store.Private | None = None
        self.layer: Any = None

    def counts(self) -> memoryview:
        if self.store is None:
            try:
                self.store = store.Store(self.directory)
            except OSError as exc:
                # Metrics must never take the site down: this process counts alone, and says so.
                logger.error(
                    "metrics: cannot keep counters in %s (%s): this process reports its own only", self.directory, exc
                )
                self.store = store.Private()
            self._count_group_sends()
        return self.store.counts

    def _count_group_sends(self) -> None:
        from channels.layers import get_channel_layer

        try:
            self.layer = get_channel_layer()
        except Exception:
            logger.exception("metrics: the default channel layer could not be built")
            self.layer = None
        if self.layer is not None:
            layer.count_group_sends(self.layer, self.counts)

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path", "") or ""
            if path == self.path or (root and path == root + self.path):
                await self.answer(scope["method"], send)
                return
            # Inline, not a method: this runs on every request (bench/metrics_overhead.py measures it).
            counts = self.counts()
            base = store.METHOD_BASES.get(scope["method"], store.OTHER_BASE)
            started = False

            async def counted(message: ASGISendEvent) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    cls = message["status"] // 100 - 1
                    counts[base + (cls if 0 <= cls < store.LAST_CLASS else store.LAST_CLASS)] += 1
                await send(message)

            try:
                await self.app(scope, receive, counted)
            except Exception:
                # The 500 the server answers instead (a cancelled request answers nothing: not counted).
                if not started:
                    counts[base + store.LAST_CLASS] += 1
                raise
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        counts = self.counts()
        accepted = False

        async def counted_receive() -> ASGIReceiveEvent:
            message = await receive()
            if message["type"] == "websocket.receive":
                counts[store.WS_RECEIVED] += 1
            return message

        async def counted_send(message: ASGISendEvent) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "websocket.send":
                counts[store.WS_SENT] += 1
            elif kind == "websocket.accept" and not accepted:
                accepted = True
                counts[store.WS_OPENED] += 1
                counts[store.WS_OPEN] += 1
            await send(message)

        try:
            await self.app(scope, counted_receive, counted_send)
        finally:
            # The application returns when the connection is over (Channels: after websocket.disconnect).
            if accepted:
                counts[store.WS_OPEN] -= 1

    async def scrape(self) -> bytes:
        self.counts()  # this process is live too, even before its first request
        found = store.collect(self.directory) if isinstance(self.store, store.Store) else store.own(self.store)
        for folder in self.read:
            found.add(store.collect(folder))
        lines = exposition.counters(found)
        if self.layer is not None and layer.is_redis_layer(self.layer):
            lines += exposition.queues(await layer.queue_depth(self.layer))
        text = "\n".join(lines) + "\n"
        body = text.encode()
        if self.granian_port is not None:
            up, own = await exposition.granian(self.granian_port)
            if own and not own.endswith(b"\n"):
                own += b"\n"  # granian's text ends without one; the format's last line needs it
            body += (
                "\n".join(
                    exposition.family(
                        "deploykit_granian_metrics_up",
                        "gauge",
                        "1 when granian's own exporter answered; its metrics follow.",
                        [("", int(up))],
                    )
                ).encode()
                + b"\n"
                + own
            )
        return body

    async def answer(self, method: str, send: ASGISendCallable) -> None:
        headers = [(b"cache-control", b"no-store")]
        if method not in METHODS:
            status, payload = 405, b""
            headers.append((b"allow", ", ".join(METHODS).encode()))
        else:
            status, payload = 200, await self.scrape()
            headers.append((b"content-type", exposition.CONTENT_TYPE))
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers, "trailers": False})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload, "more_body": False})
