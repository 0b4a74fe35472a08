"""WebSocket load generators, run as a subprocess: ``python -m bench.wsload echo|broadcast ...``.

Each prints one JSON line with every figure. Every phase has a deadline, so a
stuck server ends the run with the figures so far, never a hang.

- ``echo``: N connections to /ws/echo/, each in a closed loop (send, await the
  echo, repeat) for D seconds; messages/s and round-trip percentiles.
- ``broadcast``: N clients in one chat room (the demo's ChatConsumer, which
  joins the room's group), then M ``group_send`` calls as fast as the channel
  layer takes them, from this process with the same layer config as the
  servers; deliveries counted per client, lost = N*M - delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

import uvloop
import websockets
from websockets.asyncio.client import ClientConnection, connect

ORIGIN = "http://127.0.0.1"  # AllowedHostsOriginValidator wants an allowed Origin


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def open_many(url: str, n: int, deadline: float, parallel: int = 50) -> tuple[list[ClientConnection], int]:
    """Open ``n`` connections, ``parallel`` handshakes at a time; (connections, failures)."""
    gate = asyncio.Semaphore(parallel)
    failures = 0

    async def one() -> ClientConnection | None:
        nonlocal failures
        async with gate:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures += 1
                return None
            try:
                return await asyncio.wait_for(connect(url, origin=ORIGIN, open_timeout=None), remaining)  # type: ignore[arg-type]
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                failures += 1
                return None

    results = await asyncio.gather(*(one() for _ in range(n)))
    return [c for c in results if c is not None], failures


async def close_all(conns: list[ClientConnection]) -> None:
    async def one(c: ClientConnection) -> None:
        try:
            await asyncio.wait_for(c.close(), 2)
        except Exception:  # noqa: BLE001 - closing, whatever state the socket is in
            pass

    await asyncio.gather(*(one(c) for c in conns))


async def echo(url: str, connections: int, duration: float, size: int) -> dict[str, Any]:
    connect_start = time.monotonic()
    conns, failures = await open_many(url, connections, connect_start + max(60.0, connections * 0.1))
    connect_seconds = time.monotonic() - connect_start
    extensions = sorted({e.name for c in conns for e in (c.protocol.extensions or [])})
    payload = "x" * size
    rtts: list[float] = []
    errors = 0
    stop_at = 0.0
    started = asyncio.Event()

    async def loop(c: ClientConnection) -> None:
        nonlocal errors
        await started.wait()
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                await c.send(payload)
                reply = await asyncio.wait_for(c.recv(), max(0.1, stop_at + 5 - time.monotonic()))
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                errors += 1
                return
            if reply != payload:
                errors += 1
                return
            rtts.append(time.perf_counter() - t0)

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    tasks = [asyncio.create_task(loop(c)) for c in conns]
    t_start = time.monotonic()
    stop_at = t_start + duration
    started.set()
    await asyncio.wait(tasks, timeout=duration + 10)
    elapsed = time.monotonic() - t_start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    for t in tasks:
        t.cancel()
    await close_all(conns)
    client_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {
        "connections_requested": connections,
        "connections_open": len(conns),
        "connect_failures": failures,
        "connect_seconds": round(connect_seconds, 3),
        "extensions": extensions,
        "message_bytes": size,
        "duration_s": round(elapsed, 3),
        "messages": len(rtts),
        "messages_per_s": len(rtts) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(rtts, 50) * 1000,
        "p90_ms": percentile(rtts, 90) * 1000,
        "p99_ms": percentile(rtts, 99) * 1000,
        "max_ms": max(rtts) * 1000 if rtts else float("nan"),
        "errors": errors,
        # The load generator shares the 2 cores: its CPU share says how much it took.
        "client_cpu_s": round(client_cpu, 3),
    }


async def broadcast(
    url: str, redis_url: str, layer_config: dict[str, Any], room: str, clients: int, messages: int, idle: float
) -> dict[str, Any]:
    from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]

    conns, failures = await open_many(f"{url}/ws/chat/{room}/", clients, time.monotonic() + 60)
    pids: dict[str, int] = {}
    for c in conns:
        hello = json.loads(await asyncio.wait_for(c.recv(), 10))
        pids[str(hello.get("pid"))] = pids.get(str(hello.get("pid")), 0) + 1
    counts = [0] * len(conns)
    last_delivery = 0.0

    async def reader(i: int, c: ClientConnection) -> None:
        nonlocal last_delivery
        try:
            async for raw in c:
                if json.loads(raw).get("type") == "message":
                    counts[i] += 1
                    last_delivery = time.monotonic()
        except websockets.WebSocketException:
            pass

    readers = [asyncio.create_task(reader(i, c)) for i, c in enumerate(conns)]
    layer = RedisChannelLayer(**{"hosts": [redis_url], **layer_config})
    group = f"chat.{room}"
    t0 = time.monotonic()
    for n in range(messages):
        await layer.group_send(group, {"type": "chat.message", "message": f"m{n}", "pid": 0})
    send_seconds = time.monotonic() - t0
    # Wait until every delivery arrived, or nothing arrived for `idle` seconds.
    expected = len(conns) * messages
    hard_deadline = time.monotonic() + 120
    while sum(counts) < expected and time.monotonic() < hard_deadline:
        if time.monotonic() - max(last_delivery, t0 + send_seconds) > idle:
            break
        await asyncio.sleep(0.05)
    delivered = sum(counts)
    span = (last_delivery - t0) if delivered else float("nan")
    for t in readers:
        t.cancel()
    await close_all(conns)
    await layer.flush()
    return {
        "clients_requested": clients,
        "clients_open": len(conns),
        "connect_failures": failures,
        "clients_per_pid": pids,
        "messages_sent": messages,
        "send_seconds": round(send_seconds, 3),
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "deliveries_per_s": delivered / span if delivered and span > 0 else 0.0,
        "delivery_span_s": round(span, 3) if delivered else None,
        "min_per_client": min(counts) if counts else 0,
        "layer_config": layer_config,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wsload")
    sub = parser.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--url", required=True)
    e.add_argument("--connections", type=int, required=True)
    e.add_argument("--duration", type=float, required=True)
    e.add_argument("--size", type=int, default=64)
    b = sub.add_parser("broadcast")
    b.add_argument("--url", required=True, help="ws://HOST:PORT")
    b.add_argument("--redis-url", required=True)
    b.add_argument("--layer-config", required=True, help="JSON: the layer's CONFIG minus hosts")
    b.add_argument("--room", required=True)
    b.add_argument("--clients", type=int, default=100)
    b.add_argument("--messages", type=int, default=1000)
    b.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.mode == "echo":
        coro = echo(args.url, args.connections, args.duration, args.size)
    else:
        coro = broadcast(
            args.url, args.redis_url, json.loads(args.layer_config), args.room, args.clients, args.messages, args.idle
        )
    # uvloop: the load generator shares the cores with the servers, so it should be cheap.
    result = uvloop.run(coro)
    sys.stdout.write("WSJSON " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
