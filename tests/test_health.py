"""The readiness endpoint tells a caller the status, never the detail (issue 14 item 1)."""

from __future__ import annotations

import json
import logging

import pytest
from channels.testing import HttpCommunicator
from django.test import override_settings

from deploykit.routing import build_application
from tests.test_plan import dk

#: A channel layer whose server is down: nothing listens on port 1.
CLOSED = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
    }
}


@pytest.mark.django_db(transaction=True)
async def test_failure_body_is_the_status_only_and_the_detail_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready"), CHANNEL_LAYERS=CLOSED):
        app = build_application([])
        with caplog.at_level(logging.WARNING, logger="deploykit.health"):
            response = await HttpCommunicator(app, "GET", "/-/ready").get_response(timeout=10)
    print(f"503 body: {response['body']!r}; log: {[r.getMessage() for r in caplog.records]}")
    assert response["status"] == 503
    assert json.loads(response["body"]) == {"status": "fail"}
    assert b"127.0.0.1" not in response["body"] and b"Error" not in response["body"]
    logged = [r for r in caplog.records if r.name == "deploykit.health"]
    assert len(logged) == 1 and "channel_layer" in logged[0].getMessage()
    assert "127.0.0.1:1" in logged[0].getMessage()


@pytest.mark.django_db(transaction=True)
@override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready"))
async def test_success_body_is_the_status_only() -> None:
    app = build_application([])
    response = await HttpCommunicator(app, "GET", "/-/ready").get_response()
    assert (response["status"], json.loads(response["body"])) == (200, {"status": "ok"})


@pytest.mark.django_db(transaction=True)
@override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready"))
async def test_head_answers_without_a_body() -> None:
    app = build_application([])
    response = await HttpCommunicator(app, "HEAD", "/-/ready").get_response()
    assert (response["status"], response["body"]) == (200, b"")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PROPFIND"])
@override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready"))
async def test_other_methods_get_405_and_check_nothing(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import deploykit.health

    async def must_not_run() -> object:
        raise AssertionError("a refused method ran the checks")

    monkeypatch.setattr(deploykit.health, "readiness", must_not_run)
    app = build_application([])
    response = await HttpCommunicator(app, method, "/-/ready").get_response()
    headers = dict(response["headers"])
    print(f"{method}: {response['status']} allow={headers.get(b'allow')!r} body={response['body']!r}")
    assert response["status"] == 405
    assert headers[b"allow"] == b"GET, HEAD"
