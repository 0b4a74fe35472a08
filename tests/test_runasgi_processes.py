"""runasgi for real: manage.py runasgi starts daphne and uvicorn (2 workers over Redis), on TCP and unix sockets.

GET / is 200, two WebSocket clients in one room exchange a message, SIGTERM stops the server
within its graceful timeout with exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.procs import free_port, http_get, running_redis, short_tmpdir, wait_until

# Starts Redis and real servers through manage.py runasgi: not in the fast loop (pytest -m "not e2e").
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
GRACEFUL = 5


def can_connect(address: tuple[str, int] | str) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.connect(address)
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Short: unix socket paths must fit in 107 bytes.
    path = short_tmpdir("runasgi")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url(workdir: Path) -> Iterator[str]:
    with running_redis(workdir) as redis:
        yield redis.url


@pytest.fixture(scope="module")
def env(workdir: Path, redis_url: str) -> dict[str, str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.production",
        "DJANGO_SECRET_KEY": "runasgi-process-tests-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": redis_url,
        "STATIC_ROOT": str(workdir / "static"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env=environment, cwd=ROOT, check=True
    )
    return environment


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runasgi", "--skip-checks", *args],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def get(address: tuple[str, int] | str, path: str) -> tuple[int, bytes]:
    response = http_get(address, path, timeout=5)
    return response.status, response.body


async def chat(address: tuple[str, int] | str) -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
    """Two clients join one room; one speaks; returns both hellos and what the other heard."""
    if isinstance(address, str):
        a_conn = websockets.unix_connect(address, "ws://127.0.0.1/ws/chat/lobby/", origin="http://127.0.0.1")
        b_conn = websockets.unix_connect(address, "ws://127.0.0.1/ws/chat/lobby/", origin="http://127.0.0.1")
    else:
        uri = f"ws://{address[0]}:{address[1]}/ws/chat/lobby/"
        a_conn = websockets.connect(uri, origin="http://127.0.0.1")
        b_conn = websockets.connect(uri, origin="http://127.0.0.1")
    async with a_conn as a, b_conn as b:
        hello_a = json.loads(await asyncio.wait_for(a.recv(), 5))
        hello_b = json.loads(await asyncio.wait_for(b.recv(), 5))
        await a.send(json.dumps({"message": "across the room"}))
        heard = json.loads(await asyncio.wait_for(b.recv(), 5))
    return hello_a, hello_b, heard


def stop(proc: subprocess.Popen[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=GRACEFUL + 10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"did not stop within {GRACEFUL + 10}s:\n{output}") from None
    return proc.returncode, time.monotonic() - started, output


@pytest.mark.parametrize(
    ("server", "bind", "workers"),
    [("daphne", "tcp", 1), ("daphne", "unix", 1), ("uvicorn", "tcp", 2), ("uvicorn", "unix", 2)],
)
def test_runasgi_serves_http_and_websockets_and_stops_on_sigterm(
    env: dict[str, str], workdir: Path, server: str, bind: str, workers: int
) -> None:
    address: tuple[str, int] | str
    if bind == "tcp":
        address = ("127.0.0.1", free_port())
        args = [f"127.0.0.1:{address[1]}"]
    else:
        address = str(workdir / f"{server}.sock")
        args = ["--uds", address]
    args += ["--server", server, "--workers", str(workers)]
    proc = start({**env, "DEPLOYKIT_GRACEFUL_TIMEOUT": str(GRACEFUL)}, *args)
    try:
        wait_until(lambda: proc.poll() is not None or can_connect(address), 20, f"{server} to listen")
        assert proc.poll() is None, proc.communicate()[0]
        status, body = get(address, "/")
        assert status == 200, body[:500]
        assert b"deploykit chat" in body
        hello_a, hello_b, heard = asyncio.run(chat(address))
        assert hello_a["type"] == hello_b["type"] == "hello"
        assert heard["type"] == "message" and heard["message"] == "across the room"
    finally:
        if proc.poll() is None:
            code, elapsed, output = stop(proc)
        else:
            code, elapsed, output = proc.returncode, 0.0, proc.communicate()[0]
    assert code == 0, output
    assert elapsed < GRACEFUL + 2, f"took {elapsed:.1f}s to stop"
    assert "deploykit: server: " in output
    # The router answers lifespan: uvicorn logs no "unsupported" or exception for it.
    server_log = output.split("\n", output.count("deploykit: "))[-1]
    assert "lifespan" not in server_log.lower(), output
    if server == "uvicorn":
        assert "Application startup complete." in server_log
    if bind == "unix":
        assert not Path(str(address)).exists() or not can_connect(str(address))


async def echo_then_too_big(port: int, limit: int) -> tuple[str, int | None]:
    """Echo a message just under the limit, then send one over it: what came back, and the close code."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo/", origin="http://127.0.0.1") as ws:
        await ws.send("x" * (limit - 100))
        echoed = await asyncio.wait_for(ws.recv(), 5)
        await ws.send("x" * (limit + 100))
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as closed:
            return str(echoed), closed.rcvd.code if closed.rcvd else None
    raise AssertionError("a message over WEBSOCKET_MAX_SIZE was accepted")


@contextlib.contextmanager
def one_process(env: dict[str, str], server: str, **knobs: str) -> Iterator[tuple[int, dict[str, object]]]:
    """``runasgi --server SERVER --workers 1`` on a free port with DEPLOYKIT_<KEY> knobs; stopped after.

    Yields the port and a dict that holds the exit code and output once stopped.
    """
    port, stopped = free_port(), {}
    knobs = {"GRACEFUL_TIMEOUT": str(GRACEFUL), **knobs}
    environment = {**env, **{f"DEPLOYKIT_{key}": value for key, value in knobs.items()}}
    proc = start(environment, f"127.0.0.1:{port}", "--server", server, "--workers", "1")
    try:
        wait_until(lambda: proc.poll() is not None or can_connect(("127.0.0.1", port)), 20, f"{server} to listen")
        assert proc.poll() is None, proc.communicate()[0]
        yield port, stopped
    finally:
        stopped["code"], _, stopped["output"] = stop(proc)


@pytest.mark.parametrize("server", ["daphne", "uvicorn", "gunicorn", "hypercorn"])
def test_websocket_max_size_reaches_the_server(env: dict[str, str], server: str) -> None:
    # gunicorn and hypercorn have no flag for it: deploykit's worker class and
    # hypercorn config module carry it from the plan. granian has no limit option.
    limit = 4096
    with one_process(env, server, WEBSOCKET_MAX_SIZE=str(limit)) as (port, _):
        echoed, code = asyncio.run(echo_then_too_big(port, limit))
    assert echoed == "x" * (limit - 100)
    # 1009 "message too big"; daphne (autobahn, failByDrop) drops the connection without a close frame.
    assert code == (None if server == "daphne" else 1009)


async def negotiated_extensions(port: int) -> str | None:
    """The Sec-WebSocket-Extensions the server answers to a client offering permessage-deflate."""
    uri = f"ws://127.0.0.1:{port}/ws/echo/"
    async with websockets.connect(uri, origin="http://127.0.0.1", compression="deflate") as ws:
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "ping"
        assert ws.response is not None
        return ws.response.headers.get("Sec-WebSocket-Extensions")


@pytest.mark.parametrize(
    ("server", "compression", "negotiated"),
    [
        ("uvicorn", False, False),
        ("uvicorn", True, True),
        ("gunicorn", False, False),  # uvicorn_worker alone would negotiate it
        ("gunicorn", True, True),
        ("daphne", True, False),  # what the plan's notes say
        ("granian", True, False),
        ("hypercorn", False, True),
    ],
)
def test_websocket_compression_follows_the_plan(
    env: dict[str, str], server: str, compression: bool, negotiated: bool
) -> None:
    with one_process(env, server, WEBSOCKET_COMPRESSION="1" if compression else "0") as (port, stopped):
        extensions = asyncio.run(negotiated_extensions(port))
    assert ("permessage-deflate" in (extensions or "")) is negotiated, extensions
    # One uvicorn process re-raises SIGTERM after its graceful shutdown (uvicorn's
    # capture_signals), which systemd counts as a clean exit; the others exit 0.
    assert stopped["code"] in (0, -signal.SIGTERM), stopped["output"]


def test_reload_restarts_daphne_on_change_and_leaves_no_orphan(env: dict[str, str]) -> None:
    port = free_port()
    proc = start(env, f"127.0.0.1:{port}", "--server", "daphne", "--reload")
    try:
        wait_until(lambda: can_connect(("127.0.0.1", port)), 20, "daphne to listen")
        first = _pid(port)
        os.utime(ROOT / "testproject" / "chat" / "views.py")  # what saving the file does
        wait_until(lambda: _pid(port) not in (None, first), 20, "the reloader to restart daphne")
        assert get(("127.0.0.1", port), "/")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # the reloader only, as a process manager would
        proc.communicate(timeout=15)
    # The server died with its reloader: nothing listens any more.
    wait_until(lambda: not can_connect(("127.0.0.1", port)), 10, "daphne to stop with the reloader")


def _pid(port: int) -> int | None:
    """The pid of the process serving /whoami/, or None while nothing answers."""
    try:
        status, body = get(("127.0.0.1", port), "/whoami/")
    except OSError:
        return None
    return int(json.loads(body)["pid"]) if status == 200 else None
