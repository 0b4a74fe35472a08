"""The readiness endpoint on the WSGI side of a split plan (issue 15).

The same answer as :class:`deploykit.health.ReadinessMiddleware`, from the
same checks (the database and a channel-layer round trip), so that a probe
aimed at the HTTP service (each Kubernetes Deployment has its own) learns
whether that service can work. Answered before Django's URL routing and
ALLOWED_HOSTS, because probes call it by IP address. The body is the status
only; what failed goes to the log, logger ``deploykit.health``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync

from deploykit import health

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

REASONS = {200: "200 OK", 405: "405 Method Not Allowed", 503: "503 Service Unavailable"}


class WsgiReadiness:
    """Answers ``path`` (PATH_INFO, the root path already in SCRIPT_NAME) and passes everything else on."""

    def __init__(self, app: WSGIApp, path: str, drain_file: str | None = None) -> None:
        self.app = app
        self.path = path
        #: 503 once this server's drain file appears (``python -m deploykit.drain start``), like the ASGI side.
        self.drain_file = drain_file

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        headers = [("Cache-Control", "no-store")]
        if method not in health.METHODS:
            status, payload = 405, b""
            headers.append(("Allow", ", ".join(health.METHODS)))
        else:
            # A fresh event loop in this worker thread, as the ASGI side's checks run in the server's loop.
            status, payload = async_to_sync(health.answer)(self.drain_file)
            headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(payload))))
        start_response(REASONS[status], headers)
        # HEAD: the GET's headers (its length too), no body.
        return [b"" if method == "HEAD" else payload]
