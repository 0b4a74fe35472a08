"""The process-manager section: who runs the server, where, with which environment and network peers."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

from deploykit import quoting
from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan.model import PROCESS_MANAGERS, App, ChannelLayer, ProcessManager, Server, WsgiServer
from deploykit.plan.reader import Reader

#: Keywords systemd.resource-control(5) accepts in IPAddressAllow= besides addresses.
IP_ALLOW_KEYWORDS = ("any", "localhost", "link-local", "multicast")
#: Seconds the process manager waits after the server's own graceful timeout before SIGKILL.
STOP_MARGIN = 15
#: Seconds ``python -m deploykit.drain start --wait`` may run past DRAIN_TIMEOUT (its polling, and the
#: applications' own websocket_disconnect): deploykit.drain.WAIT_MARGIN, here so the plan imports no server code.
DRAIN_WAIT_MARGIN = 3


def drain_timeout(r: Reader) -> int:
    """DRAIN_TIMEOUT, validated: seconds (0: no drain)."""
    return v.integer(r.get("DRAIN_TIMEOUT"), r.label("DRAIN_TIMEOUT"), minimum=0, maximum=3600)


def build_process_manager(r: Reader, app: App) -> ProcessManager:
    kind = v.choice(r.get("PROCESS_MANAGER"), r.label("PROCESS_MANAGER"), PROCESS_MANAGERS)
    user = r.get("USER")
    user = v.identifier(app.name if user is None else user, r.label("USER"))
    group = r.get("GROUP")
    group = v.identifier(user if group is None else group, r.label("GROUP"))
    proxy_group = r.get("PROXY_GROUP")
    if proxy_group is None:
        # Debian's packages: nginx and Apache run as www-data, Caddy as caddy.
        proxy_group = "caddy" if r.get("PROXY") == "caddy" else "www-data"
    proxy_group = v.identifier(proxy_group, r.label("PROXY_GROUP"))
    venv = r.get("VIRTUALENV")
    venv_label = r.label("VIRTUALENV") if venv is not None else 'DEPLOYKIT["VIRTUALENV"] (default: sys.prefix)'
    venv = v.absolute_path(sys.prefix if venv is None else venv, venv_label)
    workdir = r.get("WORKING_DIRECTORY")
    workdir = app.base_dir if workdir is None else v.absolute_path(workdir, r.label("WORKING_DIRECTORY"))
    runtime = r.get("RUNTIME_DIRECTORY")
    runtime = v.absolute_path(f"/run/{app.name}" if runtime is None else runtime, r.label("RUNTIME_DIRECTORY"))
    env_file = r.get("ENV_FILE")
    env_file = v.absolute_path(f"/etc/{app.name}/env" if env_file is None else env_file, r.label("ENV_FILE"))
    env = _environment(r, kind)
    graceful = v.integer(r.get("GRACEFUL_TIMEOUT"), r.label("GRACEFUL_TIMEOUT"), minimum=1, maximum=3600)
    stop = r.get("STOP_TIMEOUT")
    # systemd gives each ExecStop= (the drain) TimeoutStopSec, then the server as long again after SIGTERM:
    # the longer of the two, and the margin (which covers the drain's own, DRAIN_WAIT_MARGIN).
    default_stop = max(graceful, drain_timeout(r)) + STOP_MARGIN
    stop = default_stop if stop is None else v.integer(stop, r.label("STOP_TIMEOUT"), minimum=1)
    return ProcessManager(
        kind=kind,
        name=app.name,
        user=user,
        group=group,
        proxy_group=proxy_group,
        virtualenv=venv,
        python=f"{venv}/bin/python",
        working_directory=workdir,
        runtime_directory=runtime,
        env_file=env_file,
        environment=env,
        stop_timeout=stop,
    )


def _environment(r: Reader, kind: str) -> tuple[tuple[str, str], ...]:
    environment = r.get("ENVIRONMENT")
    label = r.label("ENVIRONMENT")
    if not isinstance(environment, Mapping):
        raise SpecError(label, environment, "must be a dict of names to strings")
    env = tuple(
        (v.env_name(k, f"{label}[{k!r}]"), v.env_value(val, f"{label}[{k!r}]")) for k, val in environment.items()
    )
    if kind == "supervisor":
        # supervisor's environment= has no escapes: refuse what it cannot hold.
        for name, value in env:
            try:
                quoting.supervisor_environment([(name, value)])
            except ValueError:
                raise SpecError(
                    f"{label}[{name!r}]",
                    value,
                    "supervisor's environment= cannot hold a value with both quote kinds, a quote at either "
                    "end, whitespace before ; or #, or %(here)s (supervisor expands it before any escape)",
                ) from None
    return env


def _peer(host: str | None) -> str:
    """IPAddressAllow= entry for a peer: the address itself, 'localhost', or 'any' for a DNS name."""
    if not host or host == "localhost":
        return "localhost"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "any"  # a name resolves at run time to addresses we cannot know here
    return "localhost" if address.is_loopback else str(address)


def ip_address_allow(r: Reader, server: Server | WsgiServer, layer: ChannelLayer, app: App) -> tuple[str, ...]:
    """The peers the service of ``server`` talks to: loopback, the trusted proxies on a public bind of its
    own, the channel layer, the databases and the mail server.

    Each server of a split plan gets its own: the WSGI unit's bind (WSGI_BIND) may be public when the ASGI
    side's socket is not, or the reverse. ('any',) when one of them is a host name: set
    DEPLOYKIT["IP_ADDRESS_ALLOW"] then (it applies to both units).
    """
    value = r.get("IP_ADDRESS_ALLOW")
    if value is not None:
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            raise SpecError(r.label("IP_ADDRESS_ALLOW"), value, "must be a list of addresses, networks or 'any'")
        return tuple(a if a in IP_ALLOW_KEYWORDS else v.ip_or_network(a, r.label("IP_ADDRESS_ALLOW")) for a in value)
    allow = ["localhost"]
    if not all(b.is_loopback for b in server.addresses):
        trusted = [a for a in server.forwarded_allow_ips if _peer(a.split("/")[0]) != "localhost"]
        # Only loopback trusted ("*" or the default): any host may be the proxy.
        allow += trusted if trusted and "*" not in trusted else ["any"]
    for url in layer.hosts:
        parts = urlsplit(url)
        if parts.scheme != "unix":
            allow.append(_peer(parts.hostname))
    allow += [_peer(host) for host, _ in layer.sentinels]
    allow += [_peer(host) for host in app.peer_hosts]
    allow = list(dict.fromkeys(allow))
    return ("any",) if "any" in allow else tuple(allow)
