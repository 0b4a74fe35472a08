"""The environment contract between the plan and code that runs inside the server.

The server process gets the plan only through its argv and these variables:
``ServerBackend.environment()`` writes them, every target puts them where it
puts the argv (systemd ``Environment=``, supervisor ``environment=``,
Dockerfile ``ENV``, Kubernetes ``env``, ``runasgi``'s exec), and the code the
server loads (:mod:`deploykit.proxy`, the gunicorn worker, hypercorn's config
module) reads them with :func:`read`. Nothing in the server sets Django up or
rebuilds the plan: a rebuilt plan has lost the command line (a ``--bind`` on
a public port once came to trust forged X-Forwarded-For from anyone that way).

Importing this module imports nothing from Django or the plan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "DEPLOYKIT_SERVER_"
#: The application the proxy-header wrapper serves (ASGI_APPLICATION).
APP = PREFIX + "APP"
#: Comma-separated addresses and networks whose X-Forwarded-* the wrapper applies; "*" for all.
TRUSTED_PROXIES = PREFIX + "TRUSTED_PROXIES"
#: The trust list of a server that applies X-Forwarded-* itself but leaves them in the request (uvicorn, gunicorn's
#: uvicorn worker): the wrapper drops them from the other peers, whom Django's SECURE_PROXY_SSL_HEADER would believe.
FORWARDED_ALLOW_IPS = PREFIX + "FORWARDED_ALLOW_IPS"
ROOT_PATH = PREFIX + "ROOT_PATH"
#: The readiness path (HEALTH_PATH) the servers' wrappers answer, WSGI and ASGI, whatever the application is.
HEALTH_PATH = PREFIX + "HEALTH_PATH"
#: METRICS_PATH: the wrapper counts and answers it (deploykit.metrics); unset, metrics are off.
METRICS_PATH = PREFIX + "METRICS_PATH"
#: Where each server process keeps its counter file, summed at scrape time (deploykit.metrics.store).
METRICS_DIR = PREFIX + "METRICS_DIR"
#: Other folders of counter files the scrape sums (split serving: the WSGI server's), comma-separated.
METRICS_READ = PREFIX + "METRICS_READ"
#: granian's own exporter's loopback port (--metrics-port), passed through at METRICS_PATH.
GRANIAN_METRICS_PORT = PREFIX + "GRANIAN_METRICS_PORT"
WS_MAX_SIZE = PREFIX + "WS_MAX_SIZE"
WS_PING_INTERVAL = PREFIX + "WS_PING_INTERVAL"
WS_PING_TIMEOUT = PREFIX + "WS_PING_TIMEOUT"
WS_PER_MESSAGE_DEFLATE = PREFIX + "WS_PER_MESSAGE_DEFLATE"
#: MAX_REQUESTS_JITTER for hypercorn's config module (its own flag for it is broken).
MAX_REQUESTS_JITTER = PREFIX + "MAX_REQUESTS_JITTER"
#: The drain file (:mod:`deploykit.drain`): once it exists (newer than the server), every process drains.
DRAIN_FILE = PREFIX + "DRAIN_FILE"
#: Seconds over which a draining process closes its WebSockets (DRAIN_TIMEOUT); absent: no drain.
DRAIN_TIMEOUT = PREFIX + "DRAIN_TIMEOUT"

#: Without the variable, trust what uvicorn trusts by default: loopback only.
DEFAULT_TRUSTED = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerEnvironment:
    """What the in-server code knows, decoded; None where the variable is absent (the server's default)."""

    app: str | None
    trusted_proxies: tuple[str, ...]
    root_path: str | None
    health_path: str | None
    metrics_path: str | None
    metrics_dir: str | None
    metrics_read: tuple[str, ...]
    granian_metrics_port: int | None
    ws_max_size: int | None
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_per_message_deflate: bool | None
    max_requests_jitter: int | None = None
    #: Whether the proxy-header wrapper applies (the backend writes TRUSTED_PROXIES exactly then).
    wraps_proxy: bool = False
    drain_file: str | None = None
    drain_timeout: float | None = None
    #: The server's own trust list, where the wrapper only drops what the server left (None: absent).
    forwarded_allow_ips: tuple[str, ...] | None = None


def read(environ: Mapping[str, str] | None = None) -> ServerEnvironment:
    env = os.environ if environ is None else environ

    def number(name: str) -> float | None:
        value = env.get(name)
        return None if value in (None, "") else float(value)

    trusted = env.get(TRUSTED_PROXIES)  # "": trust nobody (the server applies them itself)
    server_trusts = env.get(FORWARDED_ALLOW_IPS)
    size = number(WS_MAX_SIZE)
    deflate = env.get(WS_PER_MESSAGE_DEFLATE)
    jitter = number(MAX_REQUESTS_JITTER)
    granian = number(GRANIAN_METRICS_PORT)
    return ServerEnvironment(
        app=env.get(APP) or None,
        trusted_proxies=DEFAULT_TRUSTED if trusted is None else _addresses(trusted),
        root_path=env.get(ROOT_PATH),
        health_path=env.get(HEALTH_PATH) or None,
        metrics_path=env.get(METRICS_PATH) or None,
        metrics_dir=env.get(METRICS_DIR) or None,
        metrics_read=tuple(part for part in (env.get(METRICS_READ) or "").split(",") if part),
        granian_metrics_port=None if granian is None else int(granian),
        ws_max_size=None if size is None else int(size),
        ws_ping_interval=number(WS_PING_INTERVAL),
        ws_ping_timeout=number(WS_PING_TIMEOUT),
        ws_per_message_deflate=None if deflate in (None, "") else deflate == "1",
        max_requests_jitter=None if jitter is None else int(jitter),
        wraps_proxy=trusted is not None,
        drain_file=env.get(DRAIN_FILE) or None,
        drain_timeout=number(DRAIN_TIMEOUT),
        forwarded_allow_ips=None if server_trusts is None else _addresses(server_trusts),
    )


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
