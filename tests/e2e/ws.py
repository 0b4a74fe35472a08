"""WebSocket chat clients (the ``websockets`` library), every wait bounded."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.procs import Address

#: Seconds a message may take to cross the stack (loopback, 2 busy cores).
DELIVERY_TIMEOUT = 5.0
_UNSET: Any = object()


class Client:
    """One chat connection and the hello it got (which process serves it)."""

    def __init__(self, conn: ClientConnection, hello: dict[str, Any]) -> None:
        self.conn = conn
        self.hello = hello
        self.pid: int = hello["pid"]

    async def send(self, message: str) -> None:
        await self.conn.send(json.dumps({"message": message}))

    async def recv(self, timeout: float = DELIVERY_TIMEOUT) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        return data

    async def expect(self, messages: list[str], timeout: float = DELIVERY_TIMEOUT) -> list[str]:
        """Receive until every one of ``messages`` arrived (others are ignored); fail after ``timeout``."""
        missing = list(messages)
        deadline = time.monotonic() + timeout
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"pid {self.pid}: {len(missing)} of {len(messages)} never arrived: {missing[:5]}")
            try:
                data = await self.recv(left)
            except asyncio.TimeoutError:  # the builtin only from Python 3.11
                continue
            if data.get("type") == "message" and data["message"] in missing:
                missing.remove(data["message"])
        return messages

    async def wait_closed(self, timeout: float) -> ConnectionClosed:
        """The close the server sent (fails if the connection stays open)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await asyncio.wait_for(self.conn.recv(), max(0.01, deadline - time.monotonic()))
            except ConnectionClosed as exc:
                return exc
            except asyncio.TimeoutError:  # the builtin only from Python 3.11
                raise AssertionError(f"pid {self.pid}: connection still open after {timeout}s") from None

    async def close(self) -> None:
        await self.conn.close()


async def open_client(
    address: Address, path: str, *, origin: str | None = _UNSET, host: str = "127.0.0.1", timeout: float = 10.0
) -> Client:
    """Connect to ``path`` (a unix socket path or a TCP address) and read the hello."""
    if origin is _UNSET:
        origin = f"http://{host}" if isinstance(address, str) else f"http://{host}:{address[1]}"
    headers = {"Origin": origin} if origin is not None else {}
    if isinstance(address, str):
        conn = await unix_connect(
            address, f"ws://{host}{path}", additional_headers=headers, open_timeout=timeout, close_timeout=2
        )
    else:
        conn = await connect(
            f"ws://{host}:{address[1]}{path}", additional_headers=headers, open_timeout=timeout, close_timeout=2
        )
    hello = json.loads(await asyncio.wait_for(conn.recv(), timeout))
    assert hello["type"] == "hello", hello
    return Client(conn, hello)


async def reconnect(address: Address, path: str, timeout: float = 30.0) -> tuple[Client, int]:
    """Connect as the chat page does after a drop: retry (502 while the server restarts) until a hello, bounded.

    Returns the client and the number of attempts.
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            return await open_client(address, path, timeout=5), attempts
        except (InvalidStatus, OSError, asyncio.TimeoutError, ConnectionClosed) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"no connection to {path} after {attempts} attempts: {exc!r}") from exc
        await asyncio.sleep(0.1)


async def handshake_status(address: Address, path: str, *, origin: str | None) -> int:
    """The HTTP status of a handshake expected to be refused (101 if it was accepted)."""
    try:
        client = await open_client(address, path, origin=origin)
    except InvalidStatus as exc:
        return exc.response.status_code
    await client.close()
    return 101


async def clients_on_distinct_pids(address: Address, path: str, count: int = 2, timeout: float = 20.0) -> list[Client]:
    """``count`` clients served by ``count`` different processes: reconnect until the pids differ (bounded).

    A worker that is still starting accepts nothing, so this waits for it too.
    """
    chosen: dict[int, Client] = {}
    spare: list[Client] = []
    deadline = time.monotonic() + timeout
    attempts = 0
    while len(chosen) < count and time.monotonic() < deadline:
        attempts += 1
        client = await open_client(address, path)
        if client.pid in chosen:
            spare.append(client)
            await asyncio.sleep(0.05)
        else:
            chosen[client.pid] = client
    for client in spare:
        await client.close()
    assert len(chosen) == count, f"{attempts} connections in {timeout}s reached only pids {sorted(chosen)}"
    return list(chosen.values())
