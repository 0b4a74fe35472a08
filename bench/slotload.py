"""Load through redeploys (issue 16), run as a subprocess: ``python -m bench.slotload --port P ...``.

Until the stop file appears (bounded by ``--max-seconds``), it keeps:

- HTTP: ``--http-connections`` keep-alive connections, each a loop of ``GET /whoami/`` (a short pause
  between requests, so the servers keep CPU for starting and draining); every non-2xx answer and every
  socket error is counted, with its time.
- WebSockets: ``--clients`` chat clients, each in its own room (the demo's ChatConsumer: the message
  goes out through a channel-layer group and comes back). Each sends numbered messages, one at a time,
  and checks each reply's number. When the server closes the socket it notes the time and the code,
  reconnects (retrying, as a browser's chat page does), rejoins its room and sends the message that was
  in flight again. A message sent on an open connection whose reply never comes is lost.

It prints one ``SLOTJSON {...}`` line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

#: Seconds a reply may take before its message counts as lost (the connection still open).
REPLY_TIMEOUT = 10.0
#: Seconds between two attempts to reconnect (a chat page's retry; no exponential back-off, so that the
#: spread of reconnects is the server's doing, not the clients').
RETRY_DELAY = 0.1


class Figures:
    def __init__(self) -> None:
        self.http_ok = 0
        self.http_status: Counter[str] = Counter()
        self.http_errors: Counter[str] = Counter()
        self.http_failures: list[tuple[float, str]] = []
        self.http_keepalive_retried = 0
        self.sent = 0
        self.received = 0
        self.lost = 0
        self.lost_events: list[tuple[float, int, int]] = []
        self.retried = 0
        self.unexpected = 0
        #: Replies that came after REPLY_TIMEOUT (first counted lost, then found): slow, not lost.
        self.late = 0
        self.closes: list[tuple[float, int | None]] = []
        self.reconnects: list[tuple[float, float, int]] = []
        self.connect_failures: Counter[str] = Counter()
        self.connected: set[int] = set()
        self.first_connected = 0


async def http_loop(port: int, figures: Figures, stop: asyncio.Event, pause: float) -> None:
    request = b"GET /whoami/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while not stop.is_set():
        reused = writer is not None
        try:
            if reader is None or writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
                # The proxy closed the kept-alive connection (a reload ends its old workers' idle ones) as this
                # request went out, before any byte of an answer: sent again on a new connection, as browsers
                # and HTTP libraries do for an idempotent request (RFC 9112, 9.3.1). Counted apart. A reset is
                # the same close when the request's bytes had already reached the closed socket (the kernel
                # answers unread data with RST, not FIN); on a new connection it is still a failure.
                figures.http_keepalive_retried += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = head.split(b" ", 2)[1].decode()
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            await asyncio.wait_for(reader.readexactly(length), 10)
            if status.startswith("2"):
                figures.http_ok += 1
            else:
                figures.http_status[status] += 1
                figures.http_failures.append((time.time(), status))
            if close:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError) as exc:
            figures.http_errors[type(exc).__name__] += 1
            figures.http_failures.append((time.time(), type(exc).__name__))
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(RETRY_DELAY)
        await asyncio.sleep(pause)
    if writer is not None:
        writer.close()


async def open_room(port: int, room: str) -> ClientConnection:
    conn = await connect(
        f"ws://127.0.0.1:{port}/ws/chat/{room}/", origin="http://127.0.0.1", open_timeout=10, close_timeout=2
    )  # type: ignore[arg-type]
    hello = json.loads(await asyncio.wait_for(conn.recv(), 10))
    if hello.get("type") != "hello":
        raise WebSocketException(f"no hello: {hello}")
    return conn


def late_reply(data: dict[str, Any], index: int, given_up: set[int], figures: Figures) -> bool:
    """Whether ``data`` is the reply to a number given up on: then it was late, not lost."""
    message = str(data.get("message", ""))
    if data.get("type") != "message" or not message.startswith(f"{index}:"):
        return False
    seq = int(message.split(":", 1)[1])
    if seq not in given_up:
        return False
    given_up.discard(seq)
    figures.lost -= 1
    figures.late += 1
    return True


async def client(index: int, port: int, figures: Figures, stop: asyncio.Event, interval: float) -> None:
    room = f"slots{index}"
    seq = 0
    in_flight: int | None = None
    #: Numbers given up on: a reply that still comes is late, not lost.
    given_up: set[int] = set()
    conn: ClientConnection | None = None
    attempts = 0
    closed_at = 0.0
    # Spread the first messages: every client in step would measure nothing real.
    await asyncio.sleep(random.uniform(0, interval))
    while not stop.is_set():
        if conn is None:
            attempts += 1
            try:
                conn = await open_room(port, room)
            except (OSError, asyncio.TimeoutError, InvalidStatus, WebSocketException) as exc:
                key = f"{exc.response.status_code}" if isinstance(exc, InvalidStatus) else type(exc).__name__
                figures.connect_failures[key] += 1
                await asyncio.sleep(RETRY_DELAY)
                continue
            if closed_at:
                figures.reconnects.append((closed_at, time.time(), attempts))
            else:
                figures.first_connected += 1
            figures.connected.add(index)
            attempts = 0
        try:
            if in_flight is None:
                seq += 1
                in_flight = seq
                figures.sent += 1
            else:
                figures.retried += 1
            await conn.send(json.dumps({"message": f"{index}:{in_flight}"}))
            deadline = time.monotonic() + REPLY_TIMEOUT
            while True:
                left = deadline - time.monotonic()
                try:
                    # Past the deadline, one more short read: after this process was starved of CPU (a busy
                    # machine), a reply that came in time may be waiting in the buffer, and is not lost.
                    data = json.loads(await asyncio.wait_for(conn.recv(), max(left, 0.05)))
                except asyncio.TimeoutError:
                    if time.monotonic() >= deadline:
                        figures.lost += 1
                        figures.lost_events.append((time.time(), index, in_flight))
                        given_up.add(in_flight)
                        in_flight = None
                        break
                    continue
                if data.get("type") != "message":
                    continue
                if data.get("message") == f"{index}:{in_flight}":
                    figures.received += 1
                    in_flight = None
                    break
                if not late_reply(data, index, given_up, figures):
                    figures.unexpected += 1
            # Waiting on the socket, not sleeping: a close is seen (and timed) when it comes.
            try:
                data = json.loads(await asyncio.wait_for(conn.recv(), interval))
                if not late_reply(data, index, given_up, figures):
                    figures.unexpected += 1
            except asyncio.TimeoutError:
                pass
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            closed_at = time.time()
            figures.closes.append((closed_at, code))
            figures.connected.discard(index)
            conn = None
    if conn is not None:
        try:
            await asyncio.wait_for(conn.close(), 2)
        except Exception:  # noqa: BLE001 - closing at the end, whatever state it is in
            pass


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    figures = Figures()
    stop = asyncio.Event()
    started = time.time()
    tasks = [
        asyncio.create_task(http_loop(args.port, figures, stop, args.http_pause)) for _ in range(args.http_connections)
    ]
    for index in range(args.clients):
        tasks.append(asyncio.create_task(client(index, args.port, figures, stop, args.interval)))
        if index % 50 == 49:
            await asyncio.sleep(0.2)  # open the rooms in batches
    deadline = time.monotonic() + args.max_seconds
    ready_announced = False
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        # How many clients are connected now: the orchestrator waits for all before the next redeploy.
        with open(args.ready_file + ".status", "w") as status:
            status.write(str(len(figures.connected)))
        if not ready_announced and figures.first_connected >= args.clients and figures.received >= args.clients:
            # Every client connected and got a reply: the orchestrator may start redeploying.
            with open(args.ready_file, "w") as ready:
                ready.write(str(time.time()))
            ready_announced = True
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), REPLY_TIMEOUT + 10)
    return {
        "started": started,
        "finished": time.time(),
        "stopped_by": "stop file" if os.path.exists(args.stop_file) else "max seconds",
        "http": {
            "ok": figures.http_ok,
            "non_2xx": dict(figures.http_status),
            "errors": dict(figures.http_errors),
            "failures": figures.http_failures[:200],
            "keepalive_retried": figures.http_keepalive_retried,
        },
        "ws": {
            "clients": args.clients,
            "first_connected": figures.first_connected,
            "connected_at_end": len(figures.connected),
            "sent": figures.sent,
            "received": figures.received,
            "lost": figures.lost,
            "lost_events": figures.lost_events[:100],
            "retried": figures.retried,
            "unexpected": figures.unexpected,
            "late": figures.late,
            "closes": figures.closes,
            "reconnects": figures.reconnects,
            "connect_failures": dict(figures.connect_failures),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slotload")
    parser.add_argument("--port", type=int, required=True, help="nginx's port on 127.0.0.1")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's messages")
    parser.add_argument("--http-connections", type=int, default=4)
    parser.add_argument("--http-pause", type=float, default=0.02, help="seconds between a connection's requests")
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(main_async(args))
    sys.stdout.write("SLOTJSON " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
