"""The readiness endpoint on the WSGI side of a split plan (issue 15): the ASGI side's answer, per service."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest
from django.test import override_settings

from deploykit import wsgiproxy
from deploykit.wsgihealth import WsgiReadiness
from tests.test_health import CLOSED
from tests.test_plan import dk


def django_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"django"]


def call(app: Any, method: str, path: str, script_name: str = "") -> tuple[int, dict[str, str], bytes]:
    said: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        said["status"], said["headers"] = int(status.split()[0]), dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": script_name, "REMOTE_ADDR": "10.1.2.3"}
    body = b"".join(app(environ, start_response))
    return said["status"], said["headers"], body


@pytest.mark.django_db(transaction=True)
def test_success_body_is_the_status_only() -> None:
    status, headers, body = call(WsgiReadiness(django_app, "/-/ready"), "GET", "/-/ready")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["Cache-Control"] == "no-store" and headers["Content-Length"] == str(len(body))


@pytest.mark.django_db(transaction=True)
def test_failure_body_is_the_status_only_and_the_detail_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(CHANNEL_LAYERS=CLOSED), caplog.at_level(logging.WARNING, logger="deploykit.health"):
        status, _, body = call(WsgiReadiness(django_app, "/-/ready"), "GET", "/-/ready")
    assert (status, json.loads(body)) == (503, {"status": "fail"})
    assert b"127.0.0.1" not in body
    logged = [r.getMessage() for r in caplog.records if r.name == "deploykit.health"]
    assert len(logged) == 1 and "channel_layer" in logged[0] and "127.0.0.1:1" in logged[0]


@pytest.mark.django_db(transaction=True)
def test_head_answers_the_gets_headers_without_a_body() -> None:
    status, headers, body = call(WsgiReadiness(django_app, "/-/ready"), "HEAD", "/-/ready")
    assert (status, body) == (200, b"") and headers["Content-Length"] == str(len(b'{"status": "ok"}'))


def test_other_methods_get_405_and_check_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import deploykit.health

    async def must_not_run() -> object:
        raise AssertionError("a refused method ran the checks")

    monkeypatch.setattr(deploykit.health, "readiness", must_not_run)
    status, headers, body = call(WsgiReadiness(django_app, "/-/ready"), "POST", "/-/ready")
    assert (status, headers["Allow"], body) == (405, "GET, HEAD", b"")


def test_other_paths_go_to_django() -> None:
    assert call(WsgiReadiness(django_app, "/-/ready"), "GET", "/-/ready/x")[2] == b"django"


@pytest.mark.django_db(transaction=True)
def test_under_the_root_path_too() -> None:
    app = WsgiReadiness(django_app, "/-/ready")
    assert call(app, "GET", "/-/ready", script_name="/chat")[0] == 200


@pytest.mark.django_db(transaction=True)
def test_the_servers_application_answers_health_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploykit.wsgiproxy:application (what both WSGI servers load) puts it in front of Django."""
    monkeypatch.setenv("DEPLOYKIT_SERVER_APP", "tests.test_wsgihealth.django_app")
    monkeypatch.setenv("DEPLOYKIT_SERVER_TRUSTED_PROXIES", "127.0.0.1")
    # From the environment the WSGI backend writes next to its argv, not from settings.
    monkeypatch.setenv("DEPLOYKIT_SERVER_HEALTH_PATH", "/-/ready")
    with override_settings(DEPLOYKIT=dk()):
        app = wsgiproxy._build()
    assert call(app, "GET", "/-/ready")[:1] == (200,)
    assert call(app, "GET", "/other")[2] == b"django"
    monkeypatch.delenv("DEPLOYKIT_SERVER_HEALTH_PATH")
    with override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready")):
        assert call(wsgiproxy._build(), "GET", "/-/ready")[2] == b"django"
