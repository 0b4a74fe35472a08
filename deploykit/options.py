"""Command-line options that override the plan, shared by runasgi and deployconfig.

Each option maps to a ``DEPLOYKIT`` key, so a flag means the same thing in
every command and errors name the flag the user typed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from deploykit.plan import SERVERS, WSGI_SERVERS

#: (flag, DEPLOYKIT key, argparse keyword arguments)
PLAN_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--server", "SERVER", {"choices": SERVERS, "help": "ASGI server (default: uvicorn if installed, else daphne)"}),
    (
        "--wsgi-server",
        "WSGI_SERVER",
        {"choices": WSGI_SERVERS, "help": "split serving: HTTP through this WSGI server, WebSockets through --server"},
    ),
    ("--workers", "WORKERS", {"type": int, "metavar": "N", "help": "worker processes per server process"}),
    (
        "--processes",
        "PROCESSES",
        {"type": int, "metavar": "N", "help": "separate server processes (one socket or port each)"},
    ),
    ("--uds", "SOCKET", {"metavar": "PATH", "help": "bind a unix socket at PATH"}),
    ("--bind", "BIND", {"metavar": "HOST:PORT", "help": "bind a TCP address"}),
    ("--fd", "FD", {"type": int, "metavar": "N", "help": "take the listening socket as an inherited file descriptor"}),
    (
        "--root-path",
        "ROOT_PATH",
        {"metavar": "PATH", "help": "sub-path the site is served under (default: FORCE_SCRIPT_NAME)"},
    ),
    (
        "--proxy-headers",
        "PROXY_HEADERS",
        {"action": argparse.BooleanOptionalAction, "help": "trust X-Forwarded-For/-Proto from the proxy"},
    ),
    (
        "--forwarded-allow-ips",
        "FORWARDED_ALLOW_IPS",
        {"metavar": "ADDRESSES", "help": "comma-separated proxy addresses to trust"},
    ),
    ("--process-manager", "PROCESS_MANAGER", {"choices": ("systemd", "supervisor")}),
    (
        "--domain",
        "SERVER_NAMES",
        {"action": "append", "metavar": "NAME", "help": "server name (repeatable; default: ALLOWED_HOSTS)"},
    ),
    ("--tls-certificate", "TLS_CERTIFICATE", {"metavar": "PATH"}),
    ("--tls-certificate-key", "TLS_CERTIFICATE_KEY", {"metavar": "PATH"}),
    ("--acme-webroot", "ACME_WEBROOT", {"metavar": "PATH"}),
    ("--redis-url", "REDIS_URL", {"metavar": "URL"}),
    ("--image", "IMAGE", {"metavar": "NAME", "help": "container image name, without tag (default: NAME)"}),
    (
        "--tag",
        "IMAGE_TAG",
        {"metavar": "TAG", "help": "container image tag, e.g. 1.4.2 (required for compose and kubernetes)"},
    ),
    ("--namespace", "NAMESPACE", {"metavar": "NAME", "help": "Kubernetes namespace (default: NAME)"}),
    (
        "--replicas",
        "REPLICAS",
        {"type": int, "metavar": "N", "help": "app containers (Compose scale, Deployment replicas)"},
    ),
)


#: What changes the server's argv: runasgi takes only these.
SERVER_OPTIONS = frozenset(
    {
        "--server",
        "--wsgi-server",
        "--workers",
        "--processes",
        "--uds",
        "--bind",
        "--fd",
        "--root-path",
        "--proxy-headers",
    }
    | {"--forwarded-allow-ips", "--process-manager"}
)


def add_plan_arguments(parser: argparse.ArgumentParser, *, server_only: bool = False) -> None:
    """Add the plan-overriding options; never reads settings (``--help`` works on a broken project)."""
    for flag, key, kwargs in PLAN_OPTIONS:
        if not server_only or flag in SERVER_OPTIONS:
            parser.add_argument(flag, dest=f"plan_{key.lower()}", default=None, **kwargs)


def plan_overrides(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(overrides keyed like DEPLOYKIT, the flag to name in errors) from parsed options."""
    overrides: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for flag, key, _ in PLAN_OPTIONS:
        value = options.get(f"plan_{key.lower()}")
        if value is not None:
            overrides[key] = value
            labels[key] = flag
    return overrides, labels
