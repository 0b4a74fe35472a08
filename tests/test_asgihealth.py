"""HEALTH_PATH on the ASGI side for a project with its own asgi.py (issue 16, found on tests/projects/envsettings).

The Channels tutorial's shape (and envsettings'): ``ASGI_APPLICATION`` is the project's own
``ProtocolTypeRouter``, not ``build_application()``, so nothing in the application answers the readiness
path; ``manage.py redeploy`` then waits for a 200 that never comes, and a container's probes for a status
that is always 404. The server's own wrapper answers it, from the environment the backend writes next to
its argv (as the WSGI side's does), whatever the application is.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.test import override_settings

from deploykit import drain, proxy, serverenv
from deploykit.plan import build_plan
from deploykit.servers import BACKENDS, get_backend
from tests.test_plan import dk


async def own_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A project's own router: nothing at the readiness path (Django's 404)."""
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"project"})


def get(app: Any, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "GET", "headers": [], "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("drain_timeout", [30, 0])
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_serves_a_wrapper_that_knows_health_path(name: str, drain_timeout: int) -> None:
    with override_settings(DEPLOYKIT=dk(HEALTH_PATH="/-/ready", DRAIN_TIMEOUT=drain_timeout)):
        plan = build_plan({"SERVER": name, "WORKERS": 1})
    backend = get_backend(plan)
    assert backend.target in ("deploykit.drain:application", "deploykit.proxy:application")
    env = backend.environment()
    assert env[serverenv.HEALTH_PATH] == "/-/ready"
    assert env[serverenv.APP] == plan.app.asgi_application


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_without_health_path_nothing_is_written(name: str) -> None:
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=0)):
        plan = build_plan({"SERVER": name, "WORKERS": 1})
    assert serverenv.HEALTH_PATH not in get_backend(plan).environment()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("wrapper", ["drain", "drain-proxy", "proxy"])
def test_the_servers_application_answers_health_path_in_front_of_the_projects(
    wrapper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(serverenv.APP, "tests.test_asgihealth.own_application")
    monkeypatch.setenv(serverenv.HEALTH_PATH, "/-/ready")
    if wrapper != "drain":
        monkeypatch.setenv(serverenv.TRUSTED_PROXIES, "127.0.0.1")
    if wrapper != "proxy":
        monkeypatch.setenv(serverenv.DRAIN_FILE, "/nonexistent/app.drain")
        monkeypatch.setenv(serverenv.DRAIN_TIMEOUT, "4")
    app = proxy.build() if wrapper == "proxy" else drain._build()
    status, body = get(app, "/-/ready")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert get(app, "/whoami/") == (404, b"project")
    monkeypatch.delenv(serverenv.HEALTH_PATH)
    app = proxy.build() if wrapper == "proxy" else drain._build()
    assert get(app, "/-/ready") == (404, b"project")
