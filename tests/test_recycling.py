"""Worker recycling (issue 16): MAX_REQUESTS and its jitter, mapped to each server's own option.

The e2e proof (the worker's pid changes after N requests, no request fails) is
tests/e2e/test_recycling.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from deploykit import checks
from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.plan.model import RECYCLING_SERVERS, SERVERS
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from tests import settings as test_settings

REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://h:6379"]}}}


def dk(**values: Any) -> dict[str, Any]:
    return {**test_settings.DEPLOYKIT, **values}


def plan_of(**values: Any) -> Any:
    with override_settings(
        DEPLOYKIT=dk(**values), CHANNEL_LAYERS=REDIS, WSGI_APPLICATION="testproject.wsgi.application"
    ):
        return build_plan()


def after(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def test_off_by_default() -> None:
    plan = plan_of(SERVER="gunicorn", WORKERS=2)
    assert plan.server.max_requests is None
    assert "--max-requests" not in get_backend(plan).argv()


def test_the_jitter_defaults_to_a_tenth() -> None:
    server = plan_of(SERVER="gunicorn", WORKERS=2, MAX_REQUESTS=1000).server
    assert (server.max_requests, server.max_requests_jitter) == (1000, 100)
    assert (
        plan_of(SERVER="gunicorn", WORKERS=2, MAX_REQUESTS=1000, MAX_REQUESTS_JITTER=0).server.max_requests_jitter == 0
    )


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"MAX_REQUESTS": 0}, "MAX_REQUESTS"),
        ({"MAX_REQUESTS": "many"}, "MAX_REQUESTS"),
        ({"MAX_REQUESTS_JITTER": 10}, "MAX_REQUESTS_JITTER"),  # a jitter of nothing
        ({"MAX_REQUESTS": 100, "MAX_REQUESTS_JITTER": 101}, "MAX_REQUESTS_JITTER"),
        ({"MAX_REQUESTS": 100, "MAX_REQUESTS_JITTER": -1}, "MAX_REQUESTS_JITTER"),
        # One uvicorn worker runs without its supervisor: the whole server would exit.
        ({"SERVER": "uvicorn", "WORKERS": 1, "MAX_REQUESTS": 100}, "MAX_REQUESTS"),
    ],
)
def test_invalid_values_are_refused_by_name(values: dict[str, Any], setting: str) -> None:
    values = {"SERVER": "gunicorn", "WORKERS": 2, **values}
    with pytest.raises(SpecError) as caught:
        plan_of(**values)
    assert caught.value.setting == f'DEPLOYKIT["{setting}"]'


def test_each_server_gets_its_own_option() -> None:
    common = {"WORKERS": 2, "MAX_REQUESTS": 500, "MAX_REQUESTS_JITTER": 50}
    gunicorn = get_backend(plan_of(SERVER="gunicorn", **common)).argv()
    assert (after(gunicorn, "--max-requests"), after(gunicorn, "--max-requests-jitter")) == ("500", "50")
    uvicorn = get_backend(plan_of(SERVER="uvicorn", **common)).argv()
    assert (after(uvicorn, "--limit-max-requests"), after(uvicorn, "--limit-max-requests-jitter")) == ("500", "50")
    # hypercorn 0.18's --max-requests-jitter sets the jitter to --max-requests (__main__.py): the jitter
    # travels to its --config module instead.
    hypercorn = get_backend(plan_of(SERVER="hypercorn", **common))
    assert after(hypercorn.argv(), "--max-requests") == "500" and "--max-requests-jitter" not in hypercorn.argv()
    assert hypercorn.environment()["DEPLOYKIT_SERVER_MAX_REQUESTS_JITTER"] == "50"


def test_hypercorns_config_module_reads_the_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import deploykit.servers.hypercorn_config as config

    monkeypatch.setenv("DEPLOYKIT_SERVER_MAX_REQUESTS_JITTER", "7")
    assert importlib.reload(config).max_requests_jitter == 7


@pytest.mark.parametrize("server", sorted(set(SERVERS) - set(RECYCLING_SERVERS)))
def test_servers_that_cannot_recycle_by_count_get_w017(server: str) -> None:
    workers = 1 if server == "daphne" else 2
    with override_settings(DEPLOYKIT=dk(SERVER=server, WORKERS=workers, MAX_REQUESTS=100)):
        plan = build_plan()
        found = [m for m in checks.check_deploy() if m.id == "deploykit.W017"]
    assert plan.server.max_requests == 100 and not plan.server.recycles
    [message] = found
    assert server in message.msg and "never recycled" in message.msg


def test_the_wsgi_side_recycles_too() -> None:
    plan = plan_of(WSGI_SERVER="gunicorn", SERVER="daphne", MAX_REQUESTS=300, MAX_REQUESTS_JITTER=30)
    gunicorn = get_wsgi_backend(plan).argv()
    assert (after(gunicorn, "--max-requests"), after(gunicorn, "--max-requests-jitter")) == ("300", "30")
    # granian counts no requests: its side is named by W017.
    with override_settings(
        DEPLOYKIT=dk(WSGI_SERVER="granian", SERVER="gunicorn", WORKERS=2, MAX_REQUESTS=300),
        CHANNEL_LAYERS=REDIS,
        WSGI_APPLICATION="testproject.wsgi.application",
    ):
        plan = build_plan()
        [message] = [m for m in checks.check_deploy() if m.id == "deploykit.W017"]
    assert "--max-requests" not in get_wsgi_backend(plan).argv()
    assert "granian" in message.msg


def test_w016_recycling_the_websocket_side() -> None:
    with override_settings(DEPLOYKIT=dk(SERVER="gunicorn", WORKERS=2, MAX_REQUESTS=1000), CHANNEL_LAYERS=REDIS):
        [message] = [m for m in checks.check_deploy() if m.id == "deploykit.W016"]
    assert "WebSockets" in message.msg and "MAX_REQUESTS" in message.msg


def test_w016_is_silent_when_only_the_http_side_can_recycle() -> None:
    # daphne keeps the WebSockets and recycles nothing; the WSGI side recycling drops no WebSocket.
    with override_settings(
        DEPLOYKIT=dk(WSGI_SERVER="gunicorn", SERVER="daphne", MAX_REQUESTS=300),
        CHANNEL_LAYERS=REDIS,
        WSGI_APPLICATION="testproject.wsgi.application",
    ):
        found = [m.id for m in checks.check_deploy()]
    assert "deploykit.W016" not in found


def test_gunicorn_conf_py_recycles_like_the_argv() -> None:
    from deploykit.targets.gunicorn import Gunicorn

    plan = plan_of(SERVER="gunicorn", WORKERS=2, MAX_REQUESTS=500, MAX_REQUESTS_JITTER=50)
    namespace: dict[str, Any] = {}
    exec(Gunicorn(plan).render(), namespace)  # our own rendered file
    assert (namespace["max_requests"], namespace["max_requests_jitter"]) == (500, 50)
