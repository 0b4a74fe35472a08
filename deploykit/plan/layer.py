"""The channel layer section: CHANNEL_LAYERS["default"], the layer that runs.

``CHANNEL_LAYERS`` is the one source of truth: it is what ``get_channel_layer()``
returns in the server. ``DEPLOYKIT["REDIS_URL"]`` only feeds the layer that
``deployconfig channels`` writes; the checks report a layer that is missing or
disagrees with it (E005, E006) instead of silently describing another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from deploykit import validators as v
from deploykit.conf import django_setting
from deploykit.exceptions import SpecError
from deploykit.plan.model import (
    IN_MEMORY_BACKEND,
    PUBSUB_BACKEND,
    REDIS_BACKEND,
    REDIS_DEFAULT_GROUP_EXPIRY,
    ChannelLayer,
    bracket,
)
from deploykit.plan.reader import Reader

#: Third-party layers deploykit knows, and where their CONFIG names the broker.
RABBITMQ_BACKEND = "channels_rabbitmq.core.RabbitmqChannelLayer"
POSTGRES_BACKEND = "channels_postgres.core.PostgresChannelLayer"
_LABEL = 'CHANNEL_LAYERS["default"]["CONFIG"]'
#: CONFIG keys an unknown layer may name its broker by.
_HOST_KEYS = ("host", "hosts", "url", "urls", "address", "location", "HOST")


def build_channel_layer(r: Reader, notes: list[str]) -> ChannelLayer:
    capacity_rec = v.integer(r.get("CHANNEL_CAPACITY"), r.label("CHANNEL_CAPACITY"), minimum=1, maximum=10**7)
    lifetime = v.integer(r.get("WEBSOCKET_LIFETIME"), r.label("WEBSOCKET_LIFETIME"), minimum=1, maximum=86400 * 365)
    expiry_setting = r.get("GROUP_EXPIRY")
    expiry_rec = (
        max(REDIS_DEFAULT_GROUP_EXPIRY, lifetime)
        if expiry_setting is None
        else v.integer(expiry_setting, r.label("GROUP_EXPIRY"), minimum=1, maximum=86400 * 365)
    )
    url = r.get("REDIS_URL")
    redis_url = None if url is None else v.redis_url(url, r.label("REDIS_URL"))
    common: dict[str, Any] = {
        "recommended_capacity": capacity_rec,
        "recommended_group_expiry": expiry_rec,
        "redis_url": redis_url,
    }
    layers = django_setting("CHANNEL_LAYERS") or {}
    default = layers.get("default") if isinstance(layers, Mapping) else None
    if default is None:
        return ChannelLayer("none", "", (), (), None, None, None, **common)
    if not isinstance(default, Mapping) or not isinstance(default.get("BACKEND"), str):
        raise SpecError('CHANNEL_LAYERS["default"]', default, "must be a dict with a BACKEND")
    backend = v.dotted_path(default["BACKEND"], 'CHANNEL_LAYERS["default"]["BACKEND"]')
    config = default.get("CONFIG") or {}
    if not isinstance(config, Mapping):
        raise SpecError(_LABEL, config, "must be a dict")
    capacity = config.get("capacity")
    group_expiry = config.get("group_expiry")
    capacity = None if capacity is None else v.integer(capacity, f'{_LABEL}["capacity"]', minimum=1)
    group_expiry = None if group_expiry is None else v.integer(group_expiry, f'{_LABEL}["group_expiry"]', minimum=1)
    sized = {"capacity": capacity, "group_expiry": group_expiry, **common}
    if backend == IN_MEMORY_BACKEND:
        return ChannelLayer("memory", backend, (), (), None, **sized)
    if backend in (REDIS_BACKEND, PUBSUB_BACKEND):
        return _redis(backend, config, sized)
    if backend == RABBITMQ_BACKEND:
        # channels_rabbitmq: CONFIG["host"], an amqp:// URL (its default: localhost).
        host = config.get("host", "amqp://guest:guest@localhost/")
        return ChannelLayer("rabbitmq", backend, (_broker_url(host, f'{_LABEL}["host"]'),), (), None, **sized)
    if backend == POSTGRES_BACKEND:
        # channels_postgres: CONFIG is a DATABASES entry (HOST, PORT, NAME...).
        host = config.get("HOST") or "localhost"
        port = config.get("PORT") or 5432
        h, p = v.host_port(f"{bracket(str(host))}:{port}", f'{_LABEL}["HOST"]')
        return ChannelLayer("postgres", backend, (f"postgres://{bracket(h)}:{p}",), (), None, **sized)
    hosts = tuple(_broker_url(h, label) for label, h in _hosts_in_config(config))
    unknown = (
        f"channel layer {backend} is not one deploykit knows: "
        + (f"took its broker from CONFIG ({', '.join(hosts)})" if hosts else "found no broker host in its CONFIG")
        + "; Redis checks and `deployconfig channels` do not apply, and whether messages cross processes is "
        "assumed (set IP_ADDRESS_ALLOW if the unit must reach other hosts)"
    )
    notes.append(unknown)
    return ChannelLayer("other", backend, hosts, (), None, unknown=unknown, **sized)


def _redis(backend: str, config: Mapping[str, Any], sized: dict[str, Any]) -> ChannelLayer:
    hosts: list[str] = []
    sentinels: list[tuple[str, int]] = []
    timeouts: list[float | Literal["default"] | None] = []
    pools: list[int | Literal["default"]] = []
    master_name: str | None = None
    for i, host in enumerate(config.get("hosts") or ["redis://localhost:6379"]):
        host_label = f'{_LABEL}["hosts"][{i}]'
        if isinstance(host, str):
            hosts.append(v.redis_url(host, host_label))
        elif isinstance(host, (tuple, list)) and len(host) == 2:
            h, p = v.host_port(f"{bracket(str(host[0]))}:{host[1]}", host_label)
            hosts.append(f"redis://{bracket(h)}:{p}")
        elif isinstance(host, Mapping) and "sentinels" in host:
            for s in host["sentinels"]:
                if isinstance(s, str) or not isinstance(s, (tuple, list)) or len(s) != 2:
                    raise SpecError(f'{host_label}["sentinels"]', s, "must be a (host, port) pair")
                sentinels.append(v.host_port(f"{bracket(str(s[0]))}:{s[1]}", f'{host_label}["sentinels"]'))
            master_name = v.identifier(host.get("master_name", "mymaster"), f'{host_label}["master_name"]')
        elif isinstance(host, Mapping) and "address" in host:
            hosts.append(v.redis_url(host["address"], f'{host_label}["address"]'))
        else:
            raise SpecError(host_label, host, "must be a redis:// URL, a (host, port) pair or a sentinel dict")
        timeouts.append(_read_timeout(host, host_label))
        pools.append(_pool_size(host, host_label))
    kind: Literal["redis", "sentinel", "pubsub"] = (
        "sentinel" if sentinels else "pubsub" if backend == PUBSUB_BACKEND else "redis"
    )
    return ChannelLayer(
        kind,
        backend,
        tuple(hosts),
        tuple(sentinels),
        master_name,
        read_timeouts=tuple(timeouts),
        pool_sizes=tuple(pools),
        **sized,
    )


def _hosts_in_config(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) of every broker-looking value in an unknown layer's CONFIG."""
    found: list[tuple[str, Any]] = []
    for key in _HOST_KEYS:
        value = config.get(key)
        label = f'{_LABEL}["{key}"]'
        if isinstance(value, str):
            found.append((label, value))
        elif isinstance(value, (list, tuple)):
            found += [(f"{label}[{i}]", item) for i, item in enumerate(value) if isinstance(item, str)]
    return found


def _broker_url(value: Any, label: str) -> str:
    """A broker as ``scheme://host:port`` (credentials dropped: the plan only needs where it is)."""
    text = str(value)
    if "://" not in text:
        if ":" not in text:
            return f"tcp://{v.hostname(text, label)}"
        host, port = v.host_port(text, label)
        return f"tcp://{bracket(host)}:{port}"
    parts = urlsplit(text)
    if not parts.hostname:
        raise SpecError(label, "<redacted>" if parts.password else value, "names no host")
    name = v.hostname(parts.hostname, label)
    return f"{parts.scheme}://{bracket(name)}" + (f":{parts.port}" if parts.port else "")


def _pool_size(host: Any, label: str) -> int | Literal["default"]:
    """``max_connections`` of a host dict, or of a URL's query (redis-py's from_url reads it there)."""
    if isinstance(host, Mapping):
        if "max_connections" not in host:
            return "default"
        return v.integer(host["max_connections"], f'{label}["max_connections"]', minimum=1)
    if isinstance(host, str):
        found = parse_qs(urlsplit(host).query).get("max_connections")
        if found:
            try:
                return v.integer(int(found[-1]), f"{label} max_connections", minimum=1)
            except ValueError:
                raise SpecError(f"{label} max_connections", found[-1], "must be an integer") from None
    return "default"


def _read_timeout(host: Any, label: str) -> float | Literal["default"] | None:
    if not isinstance(host, Mapping) or "socket_timeout" not in host:
        return "default"
    timeout = host["socket_timeout"]
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise SpecError(f'{label}["socket_timeout"]', timeout, "must be a number of seconds or None")
    return float(timeout)
