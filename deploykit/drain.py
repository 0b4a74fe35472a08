"""Drain a stopping server's WebSockets over a window instead of dropping them all at once (issue 16).

When a server stops, it closes every WebSocket with 1012 at the same instant, and
every client reconnects at once to the server that has just started. With
``DRAIN_TIMEOUT`` > 0 the backends serve ``deploykit.drain:application``, which
wraps the application named by ``DEPLOYKIT_SERVER_APP`` (inside the proxy-header
wrapper where that applies) with :class:`DrainMiddleware`. Once the server's drain
file exists (:mod:`deploykit.drainfile`), each process:

- refuses new WebSocket handshakes (closes before accepting: the client gets a 403
  and tries again, by then elsewhere);
- closes each open WebSocket with 1012 at a uniform random time within the window,
  so the reconnects spread over it;
- first delivers ``websocket.disconnect`` (code 1012) to the application, after the
  message it is handling: a Channels consumer finishes that message, runs its
  ``websocket_disconnect`` (which discards its ``groups``), returns, and only then
  does the client get its close frame;
- answers the readiness endpoint with 503 (:mod:`deploykit.health`).

Start a drain and wait for it to end with ``python -m deploykit.drain start --wait``
(systemd's ExecStop=, Kubernetes' preStop hook, the slots switch).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope, WebSocketCloseEvent

from deploykit import drainfile
from deploykit.proxy import LazyApplication

ASGIApp = Any

#: Seconds the application has, once told of the disconnect, to return before the close frame goes anyway.
APP_CLOSE_GRACE = 2.0
#: The close code: 1012 Service Restart, which tells a client to reconnect (RFC 6455 registry).
CLOSE_CODE = 1012
CLOSE: WebSocketCloseEvent = {"type": "websocket.close", "code": CLOSE_CODE, "reason": ""}
#: Where the server cannot send 1012 (daphne): a normal closure, which clients reconnect after as well.
FALLBACK_CLOSE: WebSocketCloseEvent = {"type": "websocket.close", "code": 1000, "reason": ""}
#: What this process sends: CLOSE until the server refuses it once.
_close = CLOSE


class _Connection:
    """One WebSocket: its receive, through which the drain tells the application to stop."""

    __slots__ = ("close_sent", "closing", "finished", "send", "server_receive", "timer", "waiter", "woken")

    def __init__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self.server_receive = receive
        self.send = send
        self.closing = False
        #: The application has returned: nothing left to close.
        self.finished = False
        #: The task waiting in receive(), if any: cancelled to deliver the disconnect now.
        self.waiter: asyncio.Task[Any] | None = None
        #: The drain cancelled the waiter: the CancelledError is its, not someone else's.
        self.woken = False
        self.timer: asyncio.TimerHandle | None = None
        self.close_sent = False

    async def receive(self) -> Any:
        # The per-message path: one flag test and the waiting task noted, nothing else.
        if self.closing:
            return {"type": "websocket.disconnect", "code": CLOSE_CODE}
        task = asyncio.current_task()
        self.waiter = task
        try:
            return await self.server_receive()
        except asyncio.CancelledError:
            # Ours (close() cancelled it) and nobody else's: the disconnect is the next message.
            if self.woken:
                self.woken = False
                # Python 3.11+ counts cancellations (asyncio.timeout reads the count): take ours back.
                uncancel = getattr(task, "uncancel", None)
                if uncancel is None or uncancel() == 0:
                    return {"type": "websocket.disconnect", "code": CLOSE_CODE}
            raise
        finally:
            self.waiter = None

    def close(self) -> None:
        """Its time has come: the application hears of the disconnect after the message it handles."""
        if self.closing or self.finished:
            return
        self.closing = True
        if self.waiter is not None:
            self.woken = True
            self.waiter.cancel()
        # An application that does not return in time: the client gets its close frame anyway.
        self.timer = asyncio.get_running_loop().call_later(APP_CLOSE_GRACE, self._force)

    def _force(self) -> None:
        asyncio.get_running_loop().create_task(self.send_close())

    async def send_close(self) -> None:
        global _close
        if self.close_sent:
            return
        self.close_sent = True
        try:
            await self.send(_close)
        except Exception:  # noqa: BLE001 - the client left first, the application closed it, or the code
            if _close is CLOSE:
                # daphne (autobahn) refuses every code but 1000 and 3000-4999: "invalid close code 1012".
                _close = FALLBACK_CLOSE
                with contextlib.suppress(Exception):
                    await self.send(_close)


class _ProcessDrain:
    """This process's WebSockets and whether it drains (one per process: workers are processes)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.connections: set[_Connection] = set()
        self.began: float | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.reported: int | None = None

    def watch(self) -> None:
        """Start looking at the drain file with the first WebSocket: a process without one has nothing to drain."""
        if self.watcher is None:
            self.poll()  # this handshake must not slip in when a drain is already under way
            self.watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(drainfile.POLL)
            self.poll()

    def poll(self) -> None:
        if self.began is None:
            began = drainfile.began(self.path)
            if began is None:
                return
            self.begin(began)
        count = len(self.connections)
        # While some are open, every poll (a drain started again must see this process); 0 once.
        if count or self.reported != 0:
            try:
                drainfile.report(self.path, count)
            except OSError:
                pass  # the starter then waits for the window's end: nothing is lost
            self.reported = count

    def begin(self, began: float) -> None:
        self.began = began
        loop = asyncio.get_running_loop()
        # Uniform over what is left of the window (this process looks at the file every POLL seconds): every
        # process ends by the same time, and none closes a burst at once for the moments it did not look.
        left = max(0.0, began + self.timeout - time.time())
        for connection in self.connections:
            loop.call_later(random.random() * left, connection.close)


class DrainMiddleware:
    """Drains this process's WebSockets once ``path`` appears (see the module's docstring). HTTP passes through."""

    def __init__(self, app: ASGIApp, path: str, timeout: float) -> None:
        self.app = app
        self.path = path
        self.timeout = timeout
        self._drain: _ProcessDrain | None = None
        self._pid = 0

    @property
    def drain(self) -> _ProcessDrain:
        # Built in the process that serves (a server may fork its workers after loading the application).
        if self._drain is None or self._pid != os.getpid():
            self._drain, self._pid = _ProcessDrain(self.path, self.timeout), os.getpid()
        return self._drain

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        drain = self.drain
        drain.watch()
        if drain.began is not None:
            # Refused before accept: the server answers the handshake with 403.
            if (await receive())["type"] == "websocket.connect":
                await send(CLOSE)
            return
        connection = _Connection(receive, send)
        drain.connections.add(connection)
        try:
            await self.app(scope, connection.receive, send)
        finally:
            connection.finished = True
            drain.connections.discard(connection)
            if drain.began is not None and not drain.connections:
                drain.poll()  # the last one: the starter need not wait for the next look
            if connection.timer is not None:
                connection.timer.cancel()
            if connection.closing:
                # The application has handled its last message and its disconnect: now the client hears of it.
                await connection.send_close()


def _build() -> ASGIApp:
    from django.utils.module_loading import import_string

    from deploykit import health, proxy, serverenv

    env = serverenv.read()
    if env.app is None:
        raise RuntimeError(
            f"{serverenv.APP} is not set: deploykit.drain:application wraps the application it names "
            "(runasgi and the generated units set it)"
        )
    app = proxy.build() if env.wraps_proxy else health.wrap(import_string(env.app), env)
    if env.drain_file is None or not env.drain_timeout:
        return app
    return DrainMiddleware(app, env.drain_file, env.drain_timeout)


#: ``deploykit.drain:application``, what the server backends load when DRAIN_TIMEOUT > 0 (or HEALTH_PATH is set).
application = LazyApplication(_build)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploykit.drain start [--wait]``: start this server's drain (and wait for its end)."""
    from deploykit import serverenv

    env = serverenv.read()
    parser = argparse.ArgumentParser(prog="python -m deploykit.drain", description=main.__doc__)
    parser.add_argument("action", choices=["start", "status"])
    parser.add_argument("--file", default=env.drain_file, help=f"the drain file (default: ${serverenv.DRAIN_FILE})")
    parser.add_argument(
        "--timeout",
        type=float,
        default=env.drain_timeout or 0.0,
        help=f"the window, seconds (default: ${serverenv.DRAIN_TIMEOUT})",
    )
    parser.add_argument("--wait", action="store_true", help="wait until no WebSocket is open, or the window ends")
    parser.add_argument("--at-least", type=float, default=0.0, help="with --wait: wait at least this many seconds")
    args = parser.parse_args(argv)
    if not args.file:
        parser.error(f"no drain file: {serverenv.DRAIN_FILE} is unset (DRAIN_TIMEOUT is 0?) and --file is not given")
    if args.action == "status":
        since = os.stat(args.file).st_mtime if os.path.exists(args.file) else None
        left = {} if since is None else drainfile.open_websockets(args.file, since)
        print(f"drain: {'not started' if since is None else 'started'}; open WebSockets by pid: {left}")
        return 0
    since = drainfile.start(args.file)
    print(f"drain: started ({args.file}, window {args.timeout:g}s)", flush=True)
    if not args.wait:
        return 0
    left = drainfile.wait(args.file, args.timeout, since, at_least=args.at_least)
    took = time.time() - since
    if left:
        print(f"drain: window over after {took:.1f}s with WebSockets still open: {left} (pid: count)", flush=True)
    else:
        print(f"drain: done after {took:.1f}s, no WebSocket open", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
