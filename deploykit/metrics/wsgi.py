"""The WSGI side of split serving counts its HTTP responses too (issue 17 item 7).

It does not answer METRICS_PATH (the proxies send that path to the ASGI server); it keeps its counters
in its own folder (its service's runtime directory), which the ASGI server reads at scrape time
(``DEPLOYKIT_SERVER_METRICS_READ``). Requests arrive on several threads (gthread, granian's blocking
threads): the increments take a lock, uncontended almost always.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from deploykit.metrics import store

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

logger = logging.getLogger("deploykit.metrics")


class WsgiCounting:
    def __init__(self, app: WSGIApp, directory: str) -> None:
        self.app = app
        self.directory = directory
        self.store: store.Store | store.Private | None = None
        self.lock = threading.Lock()

    def counts(self) -> memoryview:
        if self.store is None:
            with self.lock:
                if self.store is None:
                    try:
                        self.store = store.Store(self.directory)
                    except OSError as exc:
                        logger.error("metrics: cannot keep counters in %s (%s): not counted", self.directory, exc)
                        self.store = store.Private()
        return self.store.counts

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        counts = self.counts()
        base = store.METHOD_BASES.get(environ.get("REQUEST_METHOD", ""), store.OTHER_BASE)
        lock = self.lock

        def counted(status: str, headers: Any, exc_info: Any = None) -> Any:
            cls = int(status[:3]) // 100 - 1 if status[:3].isdigit() else store.LAST_CLASS
            with lock:
                counts[base + (cls if 0 <= cls < store.LAST_CLASS else store.LAST_CLASS)] += 1
            return (
                start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)
            )

        return self.app(environ, counted)
