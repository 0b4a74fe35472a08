"""The one place where deploykit reads settings.

``DEPLOYKIT`` is merged over :data:`DEFAULTS` at call time, never at import, and
the merged dict is cached until a ``setting_changed`` signal clears it, so
``override_settings`` just works.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from deploykit.exceptions import SpecError

#: Every ``DEPLOYKIT`` key, its default and (in README) its meaning.
#: ``None`` means "derive it from Django's own settings or the machine".
DEFAULTS: dict[str, Any] = {
    # app
    "NAME": None,
    "WEBSOCKET_ROUTES": None,
    "HEALTH_PATH": None,
    # Whether the proxies answer HEALTH_PATH for every client, not only loopback (issue 14 item 1).
    "HEALTH_PUBLIC": False,
    # The Prometheus endpoint (issue 17 item 7): off when None; the proxies keep it to loopback.
    "METRICS_PATH": None,
    # granian's own exporter, on this loopback port, passed through at METRICS_PATH (not 9090:
    # Prometheus's own port on the same machine).
    "GRANIAN_METRICS_PORT": 9464,
    # Where Prometheus runs in the cluster: the NetworkPolicy lets its pods reach the app's port.
    "PROMETHEUS_NAMESPACE": "monitoring",
    # server
    "SERVER": None,
    "WORKERS": None,
    "PROCESSES": 1,
    "BIND": None,
    "SOCKET": None,
    "FD": None,
    "ROOT_PATH": None,
    "PROXY_HEADERS": True,
    "FORWARDED_ALLOW_IPS": None,
    "GRACEFUL_TIMEOUT": 30,
    # Seconds over which a stopping server closes its WebSockets, each at a random time, so clients do not
    # all reconnect at once (issue 16); 0: all at once, when the server stops.
    "DRAIN_TIMEOUT": 30,
    "KEEPALIVE_TIMEOUT": 5,
    # The listen queue of the app's socket, for every listen() on it: the server's, the socket unit's and
    # supervisor's (a server that inherits the socket re-listens with its own, hypercorn's 100).
    "BACKLOG": 4096,
    "WEBSOCKET_PING_INTERVAL": 20,
    "WEBSOCKET_PING_TIMEOUT": 20,
    "WEBSOCKET_MAX_SIZE": 1024 * 1024,
    "WEBSOCKET_LIFETIME": 86400,
    "WEBSOCKET_COMPRESSION": False,
    # Worker recycling (issue 16): a worker is replaced after this many requests (None: never), plus a
    # random 0..MAX_REQUESTS_JITTER (None: a tenth of MAX_REQUESTS) so that workers do not all go at once.
    "MAX_REQUESTS": None,
    "MAX_REQUESTS_JITTER": None,
    "ACCESS_LOG": None,
    "LOG_LEVEL": "info",
    "LOG_FORMAT": "text",
    # split serving (issue 15): HTTP through this WSGI server, WebSockets through SERVER; off when None
    "WSGI_SERVER": None,
    "WSGI_WORKERS": None,
    "WSGI_THREADS": None,
    "WSGI_BIND": None,
    # Two slots of the app and a switch (issue 16): e.g. ("blue", "green"); off when None
    "SLOTS": None,
    # The file the proxy takes its upstream from, which `manage.py redeploy` rewrites (default: by PROXY)
    "UPSTREAM_FILE": None,
    # site (the reverse proxy)
    "PROXY": "nginx",
    "SERVER_NAMES": None,
    "LISTEN_ADDRESS": None,
    "HTTP_PORT": 80,
    "HTTPS_PORT": 443,
    "TLS_CERTIFICATE": None,
    "TLS_CERTIFICATE_KEY": None,
    "ACME_WEBROOT": None,
    "PROXY_READ_TIMEOUT": None,
    # Bytes the proxy accepts in a request body (0: no limit). Not taken from
    # DATA_UPLOAD_MAX_MEMORY_SIZE, which does not limit file uploads.
    "MAX_BODY_SIZE": 100 * 1024 * 1024,
    "UPSTREAM": None,
    "STICKY_SESSIONS": False,
    "NGINX_VERSION": None,
    # The CDN or load balancer in front of the proxy (addresses or networks), whose
    # X-Forwarded-For and X-Forwarded-Proto the proxy believes (issue 17 item 4). Empty:
    # the proxy is the edge, and the client is whoever connects to it.
    "TRUSTED_PROXIES": (),
    # A PaaS (heroku, render, fly) whose router is the proxy: `deployconfig all` writes its files
    # (Procfile, render.yaml, fly.toml + Dockerfile) instead of a host's; None: a host of ours.
    "PLATFORM": None,
    # process manager
    "PROCESS_MANAGER": "systemd",
    "USER": None,
    # The app's own group (default: the user's name). Not the web server's: the
    # app would share access with everything else that runs as that group.
    "GROUP": None,
    # The reverse proxy's group, which reaches the socket only (default: www-data;
    # caddy for Caddy, Debian's caddy user).
    "PROXY_GROUP": None,
    "VIRTUALENV": None,
    "WORKING_DIRECTORY": None,
    "RUNTIME_DIRECTORY": None,
    "ENV_FILE": None,
    "ENVIRONMENT": {},
    "IP_ADDRESS_ALLOW": None,
    "STOP_TIMEOUT": None,
    # besides the web servers (issue 17): long-running processes (Celery worker and beat, runworker, any
    # management command), the release's management commands (None: migrate, + collectstatic with
    # STATIC_ROOT), and management commands run on a schedule
    "BACKGROUND_PROCESSES": {},
    "RELEASE_COMMANDS": None,
    "TIMERS": {},
    # channel layer
    "REDIS_URL": None,
    "CHANNEL_CAPACITY": 1500,
    "GROUP_EXPIRY": None,
    # containers (dockerfile, compose, kubernetes targets)
    "CONTAINERS": False,
    "IMAGE": None,
    # No default: a Deployment needs a tag that names one build ('latest' moves, so a
    # push rolls nothing out and nodes run different builds). Required with CONTAINERS.
    "IMAGE_TAG": None,
    "PYTHON_IMAGE": "python:3.12-slim-bookworm",
    "REQUIREMENTS": ("requirements.txt",),
    "CONTAINER_PORT": 8000,
    "NAMESPACE": None,
    # Where the ingress controller (or the Gateway's data plane) runs: the only pods the
    # NetworkPolicy lets reach the app. None: ingress-nginx's own install namespace, which
    # only an ingress-nginx Ingress may assume (plan.cluster refuses it otherwise).
    "INGRESS_NAMESPACE": None,
    # The Ingress's ingressClassName (issue 17 item 6). None: "nginx" (ingress-nginx), or no
    # Ingress when GATEWAY is set; ingress-nginx's annotations only for "nginx".
    "INGRESS_CLASS": None,
    # A Gateway API Gateway ("name" or "namespace/name") to attach an HTTPRoute to. None: none.
    "GATEWAY": None,
    "REPLICAS": 2,
    "MAX_REPLICAS": None,
    "CPU_REQUEST": "250m",
    "CPU_LIMIT": None,
    "MEMORY_REQUEST": "256Mi",
    "MEMORY_LIMIT": "512Mi",
}


@functools.cache
def get_config() -> dict[str, Any]:
    """Return ``DEPLOYKIT`` merged over :data:`DEFAULTS`; unknown keys are kept for the plan to name."""
    user = getattr(settings, "DEPLOYKIT", {})
    if not isinstance(user, dict):
        raise SpecError("DEPLOYKIT", user, "must be a dict")
    return {**DEFAULTS, **user}


def django_setting(name: str, default: Any = None) -> Any:
    """Read one of Django's own settings, at call time, as written.

    ``settings.STATIC_URL`` and ``MEDIA_URL`` are prefixed with the current
    script prefix, which depends on how Django was set up; the plan wants the
    value as the user wrote it and applies FORCE_SCRIPT_NAME itself.
    """
    value = getattr(settings, name, default)
    if name in ("STATIC_URL", "MEDIA_URL"):
        # LazySettings adds the prefix on access; the wrapped holder has the raw value.
        value = getattr(settings._wrapped, name, default)  # type: ignore[misc]
    return value


def setting_is_set(name: str) -> bool:
    """Whether the project sets ``name`` itself (not Django's default)."""
    return bool(settings.is_overridden(name))  # type: ignore[misc]


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    # Only DEPLOYKIT is cached; Django's own settings are read at call time.
    if setting == "DEPLOYKIT":
        get_config.cache_clear()
