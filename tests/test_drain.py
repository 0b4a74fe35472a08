"""The drain (issue 16) in one process: the file, the middleware with fake and Channels apps, readiness, the plan.

The real servers, nginx and Redis are in tests/e2e/test_drain.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer, JsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from deploykit import drain, drainfile, health, serverenv
from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.servers import BACKENDS, get_backend
from deploykit.targets.kubernetes import Kubernetes
from deploykit.targets.systemd import Systemd
from deploykit.wsgihealth import WsgiReadiness
from tests import settings as test_settings

MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def dk(**values: object) -> dict[str, object]:
    return {**test_settings.DEPLOYKIT, **values}


# -- the file ------------------------------------------------------------------------------------


def test_a_file_older_than_the_server_is_an_earlier_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "app.drain")
    assert drainfile.began(path) is None  # no file, no drain
    since = drainfile.start(path)
    assert drainfile.began(path) == since  # this process (pytest) started before it
    # A server started after the file was written (a restart under supervisor, a pod's container restarted
    # with its emptyDir) must not drain at once.
    monkeypatch.setattr(drainfile, "server_started", lambda: time.clock_gettime(time.CLOCK_BOOTTIME) + 1)
    assert drainfile.began(path) is None


def test_server_started_is_the_process_group_leaders_start() -> None:
    # A child in its own session is its own leader: it started after this process.
    code = "from deploykit import drainfile; print(drainfile.server_started())"
    run = [sys.executable, "-c", code]
    child = float(subprocess.run(run, capture_output=True, text=True, check=True, start_new_session=True).stdout)
    assert drainfile.server_started() < child <= time.clock_gettime(time.CLOCK_BOOTTIME)
    # A leader that stays alive while its child asks (this test's own group leader may have exited, as it
    # does when the suite runs in the background: then every process falls back to its own start).
    leader = (
        "import subprocess, sys, time; from deploykit import drainfile; time.sleep(0.3); "
        f"child = subprocess.run([sys.executable, '-c', {code!r}], capture_output=True, text=True, check=True); "
        "print(drainfile.server_started(), child.stdout.strip())"
    )
    done = subprocess.run(
        [sys.executable, "-c", leader], capture_output=True, text=True, check=True, start_new_session=True
    )
    own, inherited = (float(x) for x in done.stdout.split())
    assert inherited == pytest.approx(own, abs=0.02)  # same group: same leader
    assert inherited > child  # and not this process's leader: the new session's


def test_wait_returns_when_every_live_process_reports_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "app.drain")
    since = drainfile.start(path)
    drainfile.report(path, 3)  # this process: 3 open
    Path(f"{path}.999999999").write_text("7")  # a pid that cannot exist: ignored
    monkeypatch.setattr(drainfile, "WAIT_MARGIN", 0.0)
    start = time.monotonic()
    assert drainfile.wait(path, 0.5, since) == {os.getpid(): 3}  # the window ended with 3 open
    assert time.monotonic() - start >= 1.0  # two polls at least
    drainfile.report(path, 0)
    assert drainfile.wait(path, 30, since) == {}
    assert time.time() - since < 5  # at once, not at the window's end
    # A new drain removes the counts of processes that are gone.
    drainfile.start(path)
    assert not Path(f"{path}.999999999").exists()


def test_the_command_starts_and_waits(tmp_path: Path) -> None:
    path = tmp_path / "app.drain"
    env = {**os.environ, serverenv.DRAIN_FILE: str(path), serverenv.DRAIN_TIMEOUT: "0"}
    done = subprocess.run(
        [sys.executable, "-m", "deploykit.drain", "start", "--wait"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert path.exists()
    assert done.stdout.startswith(f"drain: started ({path}, window 0s)\ndrain: done after ")
    assert done.stdout.endswith("s, no WebSocket open\n")
    bare = {k: v for k, v in os.environ.items() if not k.startswith(serverenv.PREFIX)}
    refused = subprocess.run([sys.executable, "-m", "deploykit.drain", "start"], env=bare, capture_output=True)
    assert refused.returncode == 2 and b"DEPLOYKIT_SERVER_DRAIN_FILE is unset" in refused.stderr


# -- the middleware ------------------------------------------------------------------------------


class FakeServer:
    """One WebSocket as a server drives it: a queue to the application, a list of what it sent."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


SCOPE = {"type": "websocket", "path": "/ws/", "headers": []}


def test_handshakes_are_refused_while_draining(tmp_path: Path) -> None:
    path = str(tmp_path / "app.drain")
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["type"])

    async def run() -> list[dict[str, Any]]:
        middleware = drain.DrainMiddleware(app, path, 5)
        drainfile.start(path)
        server = FakeServer()
        await server.inbox.put({"type": "websocket.connect"})
        await middleware(SCOPE, server.receive, server.send)
        await middleware({"type": "http"}, server.receive, server.send)  # HTTP passes, draining or not
        return server.sent

    assert asyncio.run(run()) == [drain.CLOSE]  # closed before accept: the server answers 403
    assert called == ["http"]


def test_the_message_being_handled_finishes_before_the_disconnect(tmp_path: Path) -> None:
    path = str(tmp_path / "app.drain")
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        events.append((await receive())["text"])
        await asyncio.sleep(0.3)  # the close time comes while this message is handled
        await send({"type": "websocket.send", "text": "reply"})
        events.append(await receive())
        events.append("returned")

    async def run() -> list[dict[str, Any]]:
        middleware = drain.DrainMiddleware(app, path, 0.05)
        server = FakeServer()
        for message in ({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "slow"}):
            await server.inbox.put(message)
        task = asyncio.ensure_future(middleware(SCOPE, server.receive, server.send))
        await asyncio.sleep(0.05)
        drainfile.start(path)
        middleware.drain.poll()  # what the watcher does every POLL seconds
        await asyncio.wait_for(task, 5)
        return server.sent

    sent = asyncio.run(run())
    assert events == ["slow", {"type": "websocket.disconnect", "code": 1012}, "returned"]
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.send", "text": "reply"}, drain.CLOSE]


def test_an_idle_application_is_woken_with_the_disconnect(tmp_path: Path) -> None:
    path = str(tmp_path / "app.drain")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def run() -> tuple[list[dict[str, Any]], float, int]:
        middleware = drain.DrainMiddleware(app, path, 0.5)
        server = FakeServer()
        await server.inbox.put({"type": "websocket.connect"})
        task = asyncio.ensure_future(middleware(SCOPE, server.receive, server.send))
        await asyncio.sleep(0.05)
        drainfile.start(path)
        start = time.monotonic()
        middleware.drain.poll()
        await asyncio.wait_for(task, 5)
        return server.sent, time.monotonic() - start, len(middleware.drain.connections)

    sent, took, left = asyncio.run(run())
    assert sent == [{"type": "websocket.accept"}, drain.CLOSE]
    assert took < 0.6 and left == 0
    assert drainfile.open_websockets(path, 0) == {os.getpid(): 0}  # reported as soon as the last one closed


def test_a_cancellation_that_is_not_the_drains_goes_through(tmp_path: Path) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await receive()  # waits: nothing more comes

    async def run() -> None:
        middleware = drain.DrainMiddleware(app, str(tmp_path / "app.drain"), 5)
        server = FakeServer()
        await server.inbox.put({"type": "websocket.connect"})
        task = asyncio.ensure_future(middleware(SCOPE, server.receive, server.send))
        await asyncio.sleep(0.05)
        task.cancel()  # the server's, on shutdown: not a disconnect
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.sent == [] and not middleware.drain.connections

    asyncio.run(run())


class Room(AsyncJsonWebsocketConsumer):
    groups = ["room"]

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send("room", {"type": "room.message", "text": content["text"]})

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"text": event["text"]})


class SyncRoom(JsonWebsocketConsumer):
    groups = ["room"]


@pytest.mark.parametrize("consumer", [Room, SyncRoom])
@override_settings(CHANNEL_LAYERS=MEMORY)
def test_a_channels_consumer_leaves_its_groups_and_is_closed_with_1012(consumer: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "app.drain")

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        layer = get_channel_layer()
        app = drain.DrainMiddleware(consumer.as_asgi(), path, 0.2)
        communicator = WebsocketCommunicator(app, "/ws/")
        connected, _ = await communicator.connect()
        assert connected
        members = {g: dict(c) for g, c in layer.groups.items()}  # type: ignore[union-attr]
        drainfile.start(path)
        app.drain.poll()
        closed = await communicator.receive_output(5)
        after = {g: dict(c) for g, c in layer.groups.items()}  # type: ignore[union-attr]
        await layer.group_send("room", {"type": "room.message", "text": "anyone?"})  # type: ignore[union-attr]
        await communicator.wait(1)
        return {"before": members, "after": after}, closed

    groups, closed = asyncio.run(run())
    assert len(groups["before"]["room"]) == 1
    assert groups["after"] == {}  # websocket_disconnect ran: group_discard for every group
    assert closed == drain.CLOSE


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


def test_readiness_is_503_while_its_process_drains(tmp_path: Path) -> None:
    path = str(tmp_path / "app.drain")

    async def probe() -> tuple[int, bytes]:
        server = FakeServer()
        middleware = health.ReadinessMiddleware(None, "/-/ready", drain_file=path)
        await middleware({"type": "http", "path": "/-/ready", "method": "GET"}, server.receive, server.send)
        return server.sent[0]["status"], server.sent[1]["body"]

    drainfile.start(path)
    assert asyncio.run(probe()) == (503, b'{"status": "draining"}')
    started: list[str] = []
    wsgi = WsgiReadiness(lambda environ, start: [], "/-/ready", path)
    body = wsgi(
        {"PATH_INFO": "/-/ready", "REQUEST_METHOD": "GET", "wsgi.input": BytesIO()}, lambda s, h: started.append(s)
    )
    assert started == ["503 Service Unavailable"] and json.loads(b"".join(body)) == {"status": "draining"}


# -- the plan and the targets --------------------------------------------------------------------


def test_drain_timeout_is_validated_where_it_is_read() -> None:
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=-1)), pytest.raises(SpecError, match=r'DRAIN_TIMEOUT"\] = -1'):
        build_plan()


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_serves_the_drain_and_names_its_file(name: str) -> None:
    plan = build_plan({"SERVER": name, "WORKERS": 1})
    backend = get_backend(plan)
    assert plan.server.drain_file == f"{plan.process_manager.runtime_directory}/{plan.app.name}.drain"
    assert backend.target == "deploykit.drain:application"
    env = backend.environment()
    assert env[serverenv.APP] == plan.app.asgi_application
    assert env[serverenv.DRAIN_FILE] == plan.server.drain_file and env[serverenv.DRAIN_TIMEOUT] == "30"
    assert serverenv.read(env).drain_timeout == 30


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_drain_timeout_0_is_todays_behaviour(name: str) -> None:
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=0)):
        plan = build_plan({"SERVER": name, "WORKERS": 1})
    backend = get_backend(plan)
    assert plan.server.drain_file is None and plan.container.server.drain_file is None
    assert backend.target in ("deploykit.proxy:application", plan.app.asgi_target)
    assert not {serverenv.DRAIN_FILE, serverenv.DRAIN_TIMEOUT} & set(backend.environment())
    assert "ExecStop=" not in Systemd(plan).render()


@override_settings(DEPLOYKIT=dk(CONTAINERS=True, IMAGE_TAG="1.0", HEALTH_PATH="/-/ready"))
def test_containers_drain_in_tmp_and_the_pod_waits_for_it() -> None:
    plan = build_plan()
    assert plan.container.server.drain_file == f"/tmp/{plan.app.name}.drain"
    yaml = Kubernetes(plan).render()
    assert '"-m", "deploykit.drain", "start", "--wait", "--at-least", "5"]' in yaml
    # 30s window + 3s margin, then the 30s graceful timeout + 15s margin.
    assert "terminationGracePeriodSeconds: 78\n" in yaml
