"""Prometheus metrics of the served application (issue 17 item 7), on at ``DEPLOYKIT["METRICS_PATH"]``.

The server's argv loads ``deploykit.proxy:application``, which wraps the
application with :func:`wrap` when ``DEPLOYKIT_SERVER_METRICS_PATH`` is set
(:mod:`deploykit.serverenv`); off, nothing of this package is imported. What is
counted and how several processes add up: :mod:`deploykit.metrics.store`.
"""

from __future__ import annotations

from typing import Any

from deploykit.serverenv import ServerEnvironment


def wrap(app: Any, env: ServerEnvironment) -> Any:
    """``app`` counted and answering ``env.metrics_path``, or ``app`` itself when metrics are off."""
    if env.metrics_path is None:
        return app
    from deploykit.metrics.asgi import MetricsMiddleware

    if env.metrics_dir is None:
        raise RuntimeError("DEPLOYKIT_SERVER_METRICS_DIR is not set: the generated units set it next to METRICS_PATH")
    return MetricsMiddleware(app, env.metrics_path, env.metrics_dir, env.granian_metrics_port, read=env.metrics_read)
