"""The Prometheus text format (version 0.0.4) of one scrape.

https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from deploykit.metrics import store
from deploykit.metrics.layer import Depth

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Seconds the scrape waits for granian's own exporter.
GRANIAN_TIMEOUT = 1.0

Sample = tuple[str, int]


def family(name: str, kind: str, text: str, samples: Iterable[Sample]) -> list[str]:
    """HELP, TYPE and the samples (``labels`` is ``'{a="b"}'`` or '') of one metric."""
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *(f"{name}{labels} {value}" for labels, value in samples)]


def counters(found: store.Collected) -> list[str]:
    t = found.totals
    http = [
        (f'{{method="{method}",status="{cls}"}}', t[store.HTTP + m * len(store.CLASSES) + c])
        for m, method in enumerate(store.METHODS)
        for c, cls in enumerate(store.CLASSES)
    ]
    live = sorted(found.live.items())
    return [
        *family(
            "deploykit_http_requests_total",
            "counter",
            "HTTP responses the ASGI application started, by method and status class (every server process of "
            "the service, exited ones included).",
            [(labels, value) for labels, value in http if value],
        ),
        *family(
            "deploykit_websocket_connections_total",
            "counter",
            "WebSocket connections accepted.",
            [("", t[store.WS_OPENED])],
        ),
        *family(
            "deploykit_websocket_connections_open",
            "gauge",
            "WebSocket connections open now, per live server process.",
            [(f'{{pid="{pid}"}}', values[store.WS_OPEN]) for pid, values in live],
        ),
        *family(
            "deploykit_websocket_messages_total",
            "counter",
            "WebSocket messages received from and sent to clients.",
            [('{direction="received"}', t[store.WS_RECEIVED]), ('{direction="sent"}', t[store.WS_SENT])],
        ),
        *family(
            "deploykit_channel_layer_group_sends_total",
            "counter",
            "group_send calls on the default channel layer.",
            [("", t[store.GROUP_SENDS])],
        ),
        *family(
            "deploykit_server_processes",
            "gauge",
            "Server processes whose counters the metrics sum: live, and exited since the directory was made.",
            [('{state="live"}', len(found.live)), ('{state="exited"}', found.exited)],
        ),
    ]


def queues(depths: list[Depth]) -> list[str]:
    def per_shard(attribute: str) -> list[Sample]:
        return [(f'{{shard="{d.shard}"}}', int(getattr(d, attribute))) for d in depths]

    def up(attribute: str) -> list[Sample]:
        return [(labels, value) for (labels, value), d in zip(per_shard(attribute), depths, strict=True) if d.up]

    return [
        *family(
            "deploykit_channel_layer_up", "gauge", "1 when the scrape read this Redis host in time.", per_shard("up")
        ),
        *family(
            "deploykit_channel_layer_scan_complete",
            "gauge",
            "1 when the scrape saw every key of the layer's prefix (0: stopped at its key budget, figures partial).",
            up("complete"),
        ),
        *family(
            "deploykit_channel_layer_queued_messages", "gauge", "Messages waiting in channel queues.", up("messages")
        ),
        *family("deploykit_channel_layer_channels", "gauge", "Channel queues holding messages.", up("channels")),
        *family(
            "deploykit_channel_layer_deepest_queue", "gauge", "Messages in the fullest channel queue.", up("deepest")
        ),
        *family("deploykit_channel_layer_groups", "gauge", "Groups with members.", up("groups")),
        *family("deploykit_channel_layer_group_members", "gauge", "Channels in groups, summed.", up("group_members")),
    ]


async def granian(port: int) -> tuple[bool, bytes]:
    """granian's own exporter on this machine's loopback (its --metrics-port): (answered, its text)."""
    try:
        return True, await asyncio.wait_for(_get(port), GRANIAN_TIMEOUT)
    except Exception:  # noqa: BLE001 - reported as deploykit_granian_metrics_up 0
        return False, b""


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        raise RuntimeError(head[:40])
    return body
