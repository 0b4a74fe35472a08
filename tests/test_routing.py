"""The router factory with channels' communicators: routing, auth, origin checks, lifespan, readiness."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from django.test import override_settings
from django.urls import path

from deploykit.routing import build_application
from tests.test_plan import dk

ORIGIN = [(b"origin", b"https://example.com"), (b"host", b"example.com")]


class ScopeConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Tells the client what the router put in its scope."""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"user": user.is_authenticated, "session": "session" in self.scope})


@pytest.fixture
def app() -> Any:
    return build_application([path("ws/scope/", ScopeConsumer.as_asgi())])


@override_settings(ALLOWED_HOSTS=["example.com"])
async def test_websocket_route_with_auth_scope(app: Any) -> None:
    communicator = WebsocketCommunicator(app, "/ws/scope/", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"user": False, "session": True}
    await communicator.disconnect()


@override_settings(ALLOWED_HOSTS=["example.com"])
@pytest.mark.parametrize(
    "headers",
    [
        [(b"origin", b"https://evil.example.net"), (b"host", b"example.com")],
        [(b"host", b"example.com")],  # no Origin at all
    ],
    ids=["cross-origin", "missing-origin"],
)
async def test_cross_origin_and_missing_origin_handshakes_are_refused(app: Any, headers: Any) -> None:
    communicator = WebsocketCommunicator(app, "/ws/scope/", headers=headers)
    await communicator.send_input({"type": "websocket.connect"})
    # A close before the accept, with no code: the ASGI spec has the server refuse the handshake with
    # HTTP 403 (communicator.connect() would report its default 1000 for any close without a code).
    assert await communicator.receive_output(1) == {"type": "websocket.close"}
    await communicator.disconnect()


@override_settings(ALLOWED_HOSTS=["example.com"])
async def test_routes_come_from_the_websocket_routes_setting() -> None:
    app = build_application()  # tests.settings: WEBSOCKET_ROUTES = testproject.chat.routing
    a = WebsocketCommunicator(app, "/ws/chat/lobby/", headers=ORIGIN)
    b = WebsocketCommunicator(app, "/ws/chat/lobby/", headers=ORIGIN)
    assert (await a.connect())[0] and (await b.connect())[0]
    assert (await a.receive_json_from())["type"] == "hello"
    assert (await b.receive_json_from())["type"] == "hello"
    await a.send_json_to({"message": "hello, room"})
    assert (await b.receive_json_from())["message"] == "hello, room"
    assert (await a.receive_json_from())["message"] == "hello, room"
    await a.disconnect()
    await b.disconnect()


@override_settings(ALLOWED_HOSTS=["example.com"])
async def test_unknown_websocket_path_is_closed(app: Any) -> None:
    communicator = WebsocketCommunicator(app, "/ws/nowhere/", headers=ORIGIN)
    with pytest.raises(ValueError, match="No route found"):
        await communicator.connect()


async def test_lifespan_startup_and_shutdown_complete(app: Any) -> None:
    communicator = ApplicationCommunicator(app, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await communicator.send_input({"type": "lifespan.startup"})
    assert await communicator.receive_output(1) == {"type": "lifespan.startup.complete"}
    await communicator.send_input({"type": "lifespan.shutdown"})
    assert await communicator.receive_output(1) == {"type": "lifespan.shutdown.complete"}
    await communicator.wait(1)


async def test_http_goes_to_django(app: Any) -> None:
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        response = await HttpCommunicator(app, "GET", "/whoami/").get_response()
    assert response["status"] == 200
    assert json.loads(response["body"])["scheme"] == "http"


async def test_readiness_is_off_unless_enabled(app: Any) -> None:
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        response = await HttpCommunicator(app, "GET", "/-/ready").get_response()
    assert response["status"] == 404


@pytest.mark.django_db(transaction=True)
@override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready"), ALLOWED_HOSTS=["example.com"])
async def test_readiness_200_when_database_and_layer_work() -> None:
    app = build_application([])
    # By IP address, as a probe calls it: not subject to ALLOWED_HOSTS.
    response = await HttpCommunicator(app, "GET", "/-/ready", headers=[(b"host", b"10.1.2.3")]).get_response()
    assert response["status"] == 200
    # The status only: the detail goes to the log (tests/test_health.py).
    assert json.loads(response["body"]) == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
async def test_readiness_503_when_a_part_fails() -> None:
    closed = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    with override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready"), CHANNEL_LAYERS=closed):
        app = build_application([])
        response = await HttpCommunicator(app, "GET", "/-/ready").get_response(timeout=10)
    assert response["status"] == 503
    assert json.loads(response["body"]) == {"status": "fail"}
