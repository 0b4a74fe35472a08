"""deploykit's system checks: one test per id, ids unique, and check --deploy on real settings modules."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import modify_settings, override_settings

import deploykit.checks.layer
from deploykit import checks
from deploykit.checks.versions import installed_version, release
from tests import settings as test_settings

ROOT = Path(__file__).resolve().parent.parent
REDIS = "channels_redis.core.RedisChannelLayer"


class SyncOnlyMiddleware:
    """A plain old-style middleware: sync_capable by default, not async_capable."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


def dk(**values: object) -> dict[str, object]:
    return {**test_settings.DEPLOYKIT, **values}


def ids() -> list[str]:
    return [m.id for m in checks.check_app_settings() + checks.check_deploy() if m.id]


def test_tests_settings_are_silent() -> None:
    assert ids() == []


def test_ids_are_unique_and_stable() -> None:
    source = "".join(path.read_text() for path in sorted((ROOT / "deploykit" / "checks").glob("*.py")))
    found = re.findall(r'id="(deploykit\.[EWI]\d{3})"', source)
    assert len(found) == len(set(found))
    assert sorted(found) == sorted(
        [f"deploykit.E00{i}" for i in range(1, 8)]
        # W007 (daphne older than 4.2.2) is retired: setup.cfg requires daphne>=4.2.2.
        + [f"deploykit.W{i:03}" for i in range(1, 13) if i != 7]
        # Issue 17 item 4: TRUSTED_PROXIES.
        + ["deploykit.W023", "deploykit.W024"]
        # Issue 17 item 5 (PaaS targets).
        + ["deploykit.W025"]
        # Issue 17: background processes and the release.
        + ["deploykit.E008", "deploykit.W021", "deploykit.W022"]
        + [f"deploykit.W{i:03}" for i in range(13, 18)]
        + ["deploykit.W020"]
        + ["deploykit.W018"]
        + ["deploykit.W026"]
        # Issue 16: the Redis pool a reconnect burst needs.
        + ["deploykit.W019"]
        # SECURE_PROXY_SSL_HEADER that no server drops from an untrusted peer (PROXY_HEADERS off on TCP).
        + ["deploykit.W027"]
        + ["deploykit.I001"]
    )
    # Every id is documented in the README's table.
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{i}`" in readme for i in found)


def test_every_message_has_a_hint() -> None:
    trees = [ast.parse(path.read_text()) for path in (ROOT / "deploykit" / "checks").glob("*.py")]
    calls = [
        n
        for tree in trees
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("Error", "Warning", "Info")
    ]
    assert calls and all(any(k.arg == "hint" for k in c.keywords) for c in calls)


@override_settings(DEPLOYKIT=dk(SOCKET="/run/a b.sock"))
def test_e001_invalid_deploy_setting_only_under_deploy() -> None:
    # A deploy-only key must not block migrate or runserver: plain check is silent.
    assert checks.check_app_settings() == []
    [message] = checks.check_deploy()
    assert message.id == "deploykit.E001"
    assert "DEPLOYKIT[\"SOCKET\"] = '/run/a b.sock'" in message.msg


@override_settings(DEPLOYKIT=dk(HEALTH_PATH="no slash"))
def test_e001_invalid_app_setting_on_plain_check() -> None:
    # What the running application reads is checked by plain check, and reported once.
    [message] = checks.check_app_settings()
    assert message.id == "deploykit.E001" and 'DEPLOYKIT["HEALTH_PATH"]' in message.msg
    assert checks.check_deploy() == []


@override_settings(DEPLOYKIT=dk(WORKER=2))
def test_e001_unknown_key_names_the_closest() -> None:
    [message] = checks.check_deploy()
    assert message.id == "deploykit.E001"
    assert "'WORKERS'" in message.msg


@override_settings(DEPLOYKIT=dk(WORKERS=2))
def test_e002_in_memory_layer_across_processes() -> None:
    assert ids() == ["deploykit.E002"]


@override_settings(ALLOWED_HOSTS=["*", "example.com"])
def test_e003_wildcard_allowed_hosts_with_websockets() -> None:
    assert ids() == ["deploykit.E003"]
    # An asgi.py of the project's own (no WEBSOCKET_ROUTES) with channels installed serves WebSockets too.
    with override_settings(DEPLOYKIT=dk(WEBSOCKET_ROUTES=None)):
        assert ids() == ["deploykit.E003"]
        with modify_settings(INSTALLED_APPS={"remove": ["channels", "daphne"]}):
            assert ids() == []


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_SSL", "on"))
def test_e004_ssl_header_no_proxy_sets() -> None:
    assert ids() == ["deploykit.E004"]
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert ids() == []


@override_settings(DEPLOYKIT=dk(BIND="0.0.0.0:8000", FORWARDED_ALLOW_IPS="*"))
def test_w001_proxy_headers_from_anywhere() -> None:
    assert ids() == ["deploykit.W001"]
    with override_settings(DEPLOYKIT=dk(BIND="127.0.0.1:8000", FORWARDED_ALLOW_IPS="*")):
        assert ids() == []
    with override_settings(DEPLOYKIT=dk(BIND="0.0.0.0:8000", FORWARDED_ALLOW_IPS="10.0.0.2")):
        assert ids() == []
    with override_settings(DEPLOYKIT=dk(BIND="0.0.0.0:8000", SERVER="daphne")):
        assert ids() == ["deploykit.W001"]


#: A channels_redis host as deploykit writes it (W009 stays quiet).
SETTLED = {"socket_timeout": None, "max_connections": 1000}
HOST = {"address": "redis://r:6379/0", **SETTLED}


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [HOST]}}})
def test_w002_redis_capacity_left_at_default() -> None:
    assert ids() == ["deploykit.W002"]
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [HOST], "capacity": 1500}}}
    ):
        assert ids() == []


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [HOST], "capacity": 1500, "group_expiry": 3600}}}
)
def test_w003_group_expiry_below_websocket_lifetime() -> None:
    assert ids() == ["deploykit.W003"]
    with override_settings(DEPLOYKIT=dk(WEBSOCKET_LIFETIME=3600)):
        assert ids() == []


def test_w004_graceful_timeout_not_below_stop_timeout() -> None:
    assert ids() == []
    # Without the drain, whose own stop-timeout warning is W018.
    with override_settings(DEPLOYKIT=dk(GRACEFUL_TIMEOUT=30, STOP_TIMEOUT=30, DRAIN_TIMEOUT=0)):
        assert ids() == ["deploykit.W004"]
    with override_settings(DEPLOYKIT=dk(GRACEFUL_TIMEOUT=30, STOP_TIMEOUT=31, DRAIN_TIMEOUT=0)):
        assert ids() == []


def test_w018_drain_longer_than_the_stop_timeout() -> None:
    # systemd gives ExecStop= (the drain) TimeoutStopSec: a drain that needs longer is cut short and every
    # WebSocket left closes at once, at SIGTERM.
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=60, GRACEFUL_TIMEOUT=30, STOP_TIMEOUT=45)):
        [message] = [m for m in checks.check_deploy() if m.id == "deploykit.W018"]
        assert ids() == ["deploykit.W018"]
        assert "DRAIN_TIMEOUT (60s)" in message.msg and "TimeoutStopSec=45" in message.msg
    # The default stop timeout covers it, and so does an explicit one with room for the drain's margin.
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=60, GRACEFUL_TIMEOUT=30)):
        assert ids() == []
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=60, GRACEFUL_TIMEOUT=30, STOP_TIMEOUT=63)):
        assert ids() == []
    # No drain, or supervisor (no stop hook: nothing to cut short).
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=0, STOP_TIMEOUT=45)):
        assert ids() == []


@override_settings(DEPLOYKIT=dk(PROXY_READ_TIMEOUT=20))
def test_w005_proxy_read_timeout_not_above_ping_interval() -> None:
    assert ids() == ["deploykit.W005"]
    with override_settings(DEPLOYKIT=dk(PROXY_READ_TIMEOUT=21)):
        assert ids() == []


@override_settings(
    DEPLOYKIT=dk(
        SERVER_NAMES=["example.com", "www.example.com"],
        TLS_CERTIFICATE="/etc/ssl/a.pem",
        TLS_CERTIFICATE_KEY="/etc/ssl/a.key",
    ),
    CSRF_TRUSTED_ORIGINS=["https://example.com"],
)
def test_w006_csrf_trusted_origins_missing() -> None:
    [message] = checks.check_deploy()
    assert message.id == "deploykit.W006"
    assert "https://www.example.com" in message.msg and "https://example.com," not in message.msg
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://example.com", "https://*.example.com"]):
        assert ids() == []


@override_settings(MIDDLEWARE=["django.middleware.security.SecurityMiddleware", "tests.test_checks.SyncOnlyMiddleware"])
def test_i001_sync_only_middleware() -> None:
    [message] = checks.check_deploy()
    assert message.id == "deploykit.I001"
    assert "tests.test_checks.SyncOnlyMiddleware" in message.msg
    assert "SecurityMiddleware" not in message.msg


def _check_deploy(settings_module: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_SECRET_KEY": "x" * 60 + "-deploykit-test-key-with-enough-entropy-1234567890",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_fires_on_a_misconfigured_project() -> None:
    result = _check_deploy("tests.checks_misconfigured")
    output = result.stdout + result.stderr
    found = set(re.findall(r"deploykit\.[EWI]\d{3}", output))
    assert found == {
        "deploykit.E003",
        "deploykit.E004",
        "deploykit.W001",
        "deploykit.W002",
        "deploykit.W003",
        "deploykit.W005",
        "deploykit.W006",
        "deploykit.W023",
        "deploykit.I001",
        # Its CHANNEL_LAYERS host is a bare URL: W009 fires with the redis-py 8 installed here.
        *(["deploykit.W009"] if release(installed_version("redis") or "0") >= (8,) else []),
        # ... and leaves the pool at redis-py's bounded default.
        *(["deploykit.W019"] if deploykit.checks.layer.default_pool_size() else []),
    }, output
    assert result.returncode != 0


def test_check_deploy_is_silent_on_testproject_production() -> None:
    result = _check_deploy("testproject.production")
    output = result.stdout + result.stderr
    assert "deploykit." not in output, output
    assert result.returncode == 0, output


@override_settings(FORCE_SCRIPT_NAME="/sub", STATIC_URL="static/")
def test_w008_relative_static_url_under_a_sub_path() -> None:
    assert ids() == ["deploykit.W008"]
    with override_settings(STATIC_URL="/sub/static/"):
        assert ids() == []


def test_w009_redis_py_8_without_socket_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    layers = {
        "default": {"BACKEND": REDIS, "CONFIG": {"hosts": ["redis://r:6379/0?max_connections=9"], "capacity": 1500}}
    }
    with override_settings(CHANNEL_LAYERS=layers):
        monkeypatch.setattr(deploykit.checks.layer, "installed_version", lambda name: "8.1.0")
        assert ids() == ["deploykit.W009"]
        monkeypatch.setattr(deploykit.checks.layer, "installed_version", lambda name: "5.2.1")
        assert ids() == []
    monkeypatch.setattr(deploykit.checks.layer, "installed_version", lambda name: "8.1.0")
    # None (no read timeout, what deploykit writes) and anything above the 5 s pop are quiet.
    for timeout, expected in [(None, []), (10, []), (5, ["deploykit.W009"]), ("10", ["deploykit.E001"])]:
        host = {"address": "redis://r:6379/0", "socket_timeout": timeout, "max_connections": 9}
        with override_settings(
            CHANNEL_LAYERS={"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [host], "capacity": 1500}}}
        ):
            assert ids() == expected, timeout
    with override_settings(
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": REDIS,
                "CONFIG": {"hosts": [{"address": "redis://r:6379/0", "max_connections": 9}], "capacity": 1500},
            }
        }
    ):
        assert ids() == ["deploykit.W009"]


def test_w019_redis_pool_left_at_redis_pys_bounded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # redis-py 8's asyncio pool holds 100 connections and raises MaxConnectionsError past them: a reconnect
    # burst after a restart (every client's group_add at once) failed consumers' connects (issue 16 bench).
    bare = {"address": "redis://r:6379/0", "socket_timeout": None}
    # redis-py 8's bound, whichever redis-py this machine has (the next test asks the installed one).
    monkeypatch.setattr(deploykit.checks.layer, "default_pool_size", lambda: 100)
    for hosts, expected in [
        ([bare], ["deploykit.W019"]),
        ([{**bare, "max_connections": 1000}], []),
        (["redis://r:6379/0?max_connections=1000"], ["deploykit.W009"]),
        ([{**bare, "max_connections": 1000}, bare], ["deploykit.W019"]),
    ]:
        layers = {"default": {"BACKEND": REDIS, "CONFIG": {"hosts": hosts, "capacity": 1500}}}
        with override_settings(CHANNEL_LAYERS=layers):
            assert ids() == expected, hosts
    # Where redis-py's pool is unbounded (before 8), nothing to say.
    monkeypatch.setattr(deploykit.checks.layer, "default_pool_size", lambda: None)
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [bare], "capacity": 1500}}}
    ):
        assert ids() == []


@pytest.mark.parametrize(
    "config",
    [
        {"BACKEND": REDIS, "CONFIG": {"hosts": ["redis://r:6379/0"]}},
        {"BACKEND": REDIS, "CONFIG": {"hosts": [{"sentinels": [("s", 26379)], "master_name": "m"}]}},
        {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": ["redis://r:6379/0"]}},
    ],
    ids=["redis", "sentinel", "pubsub"],
)
def test_the_layer_deployconfig_channels_writes_is_quiet_on_w009_and_w019(config: dict[str, Any]) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    with override_settings(CHANNEL_LAYERS={"default": config}):
        call_command("deployconfig", "channels", stdout=out, stderr=StringIO())
    written: dict[str, Any] = {}
    exec(out.getvalue(), written)  # the file a user pastes into settings.py
    with override_settings(CHANNEL_LAYERS=written["CHANNEL_LAYERS"]):
        assert not {"deploykit.W009", "deploykit.W019"} & set(ids()), out.getvalue()


def test_w019_asks_redis_py_for_its_own_default() -> None:
    import redis.asyncio

    bounded = redis.asyncio.ConnectionPool().max_connections
    assert deploykit.checks.layer.default_pool_size() == (None if bounded >= 2**31 - 1 else bounded)
    if release(installed_version("redis") or "0") >= (8,):
        assert bounded == 100  # what the burst ran into (redis-py 8.1 here)


def test_w019_max_connections_is_validated_where_read() -> None:
    host = {"address": "redis://r:6379/0", "socket_timeout": None, "max_connections": "many"}
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [host]}}}):
        assert ids() == ["deploykit.E001"]


# -- split serving (issue 15) ----------------------------------------------------------------------

SPLIT = {"WSGI_APPLICATION": "testproject.wsgi.application"}


@override_settings(DEPLOYKIT=dk(WSGI_SERVER="granian"), **SPLIT)
def test_split_serving_on_the_tests_settings_is_silent() -> None:
    assert ids() == []


def test_w013_wsgi_application_not_importable() -> None:
    with override_settings(DEPLOYKIT=dk(WSGI_SERVER="gunicorn"), WSGI_APPLICATION="testproject.nowhere.application"):
        [message] = checks.check_deploy()
    assert message.id == "deploykit.W013"
    assert "cannot be imported: ModuleNotFoundError" in message.msg


@override_settings(DEPLOYKIT=dk(WSGI_SERVER="gunicorn"), WSGI_APPLICATION=None)
def test_w013_is_silent_without_wsgi_application() -> None:
    """Unset, Django's own handler is served (deploykit.wsgi), as runserver does: nothing to warn about."""
    assert ids() == []


@override_settings(DEPLOYKIT=dk(WSGI_SERVER="granian"), ROOT_URLCONF="tests.urls_async", **SPLIT)
def test_w014_async_views_under_wsgi_are_counted() -> None:
    [message] = checks.check_deploy()
    assert message.id == "deploykit.W014"
    assert message.msg.startswith("2 async views would run through async_to_sync under the WSGI server")
    assert "tests.urls_async.live" in message.msg and "tests.urls_async.Stream" in message.msg


@override_settings(ROOT_URLCONF="tests.urls_async")
def test_w014_is_silent_without_split_serving() -> None:
    assert ids() == []


@override_settings(DEPLOYKIT=dk(WSGI_SERVER="granian"), **SPLIT)
def test_w015_wsgi_server_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from deploykit.servers.wsgi import GranianWsgi

    monkeypatch.setattr(GranianWsgi, "is_installed", classmethod(lambda cls: False))
    [message] = checks.check_deploy()
    assert message.id == "deploykit.W015"
    assert "pip install 'deploykit[granian]'" in message.hint


@override_settings(DEPLOYKIT=dk(TRUSTED_PROXIES=["173.245.48.0/20", "0.0.0.0/0"]))
def test_w023_trusted_proxies_that_trust_the_internet() -> None:
    [message] = [m for m in checks.check_deploy() if m.id]
    assert message.id == "deploykit.W023" and "0.0.0.0/0" in message.msg
    for broad in ("::/0", "0.0.0.0/4", "2000::/3"):
        with override_settings(DEPLOYKIT=dk(TRUSTED_PROXIES=[broad])):
            assert ids() == ["deploykit.W023"], broad
    # A CDN's networks and a private load balancer's are what the setting is for.
    with override_settings(DEPLOYKIT=dk(TRUSTED_PROXIES=["104.16.0.0/13", "2400:cb00::/32", "10.0.0.0/8"])):
        assert ids() == []


@override_settings(DEPLOYKIT=dk(TRUSTED_PROXIES=["10.0.0.0/8"], PROXY_HEADERS=False))
def test_w024_trusted_proxies_while_the_server_ignores_forwarded_headers() -> None:
    assert ids() == ["deploykit.W024"]
    with override_settings(DEPLOYKIT=dk(TRUSTED_PROXIES=["10.0.0.0/8"])):
        assert ids() == []
    with override_settings(DEPLOYKIT=dk(PROXY_HEADERS=False)):
        assert ids() == []


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_w027_ssl_header_that_no_server_drops_from_an_untrusted_peer() -> None:
    """With PROXY_HEADERS off the server trusts no peer's X-Forwarded-*, so it drops none (dropping would leave
    Django without the proxy's scheme), and Django believes X-Forwarded-Proto from whoever reaches a TCP port."""
    with override_settings(DEPLOYKIT=dk(BIND="127.0.0.1:8000", PROXY_HEADERS=False)):
        [message] = [m for m in checks.check_deploy() if m.id]
        assert message.id == "deploykit.W027" and "127.0.0.1:8000" in message.msg
    with override_settings(DEPLOYKIT=dk(BIND="0.0.0.0:8000", PROXY_HEADERS=False, SERVER="granian")):
        assert ids() == ["deploykit.W027"]
    # On: the server keeps the headers of FORWARDED_ALLOW_IPS only (uvicorn's through deploykit.proxy).
    with override_settings(DEPLOYKIT=dk(BIND="127.0.0.1:8000")):
        assert ids() == []
    # A unix socket: its only peers are the proxy and the local users the folder admits.
    with override_settings(DEPLOYKIT=dk(PROXY_HEADERS=False)):
        assert ids() == []
    with override_settings(DEPLOYKIT=dk(BIND="127.0.0.1:8000", PROXY_HEADERS=False), SECURE_PROXY_SSL_HEADER=None):
        assert ids() == []
    # Served through deploykit's wrapper anyway (uvicorn under a sub-path), which then drops them from every peer.
    with override_settings(DEPLOYKIT=dk(BIND="127.0.0.1:8000", PROXY_HEADERS=False, SERVER="uvicorn", ROOT_PATH="/x")):
        assert ids() == []


SLOTS = {"HEALTH_PATH": "/-/ready", "SLOTS": ("blue", "green")}
REDIS_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", **SETTLED}], "capacity": 1500},
    }
}


@pytest.mark.parametrize(
    ("values", "found"),
    [
        # Each slot on its own sockets: nothing to say.
        ({}, []),
        ({"BIND": "127.0.0.1:8000", "WSGI_SERVER": "gunicorn"}, []),
        # One WSGI port for both slots: the new slot's WSGI server cannot bind it while the old one runs.
        ({"BIND": "127.0.0.1:8000", "WSGI_SERVER": "gunicorn", "WSGI_BIND": "127.0.0.1:9000"}, ["deploykit.E007"]),
        # The proxy balances over UPSTREAM: the switch would switch nothing.
        ({"BIND": "127.0.0.1:8000", "UPSTREAM": ["10.0.0.5:8000"]}, ["deploykit.E007"]),
        # Socket activation: one socket unit, which both slots would take.
        ({"BIND": "127.0.0.1:8000", "FD": 3}, ["deploykit.E007"]),
    ],
)
def test_e007_slots_that_share_an_address_or_a_proxy_that_does_not_follow(
    values: dict[str, object], found: list[str]
) -> None:
    with override_settings(
        DEPLOYKIT=dk(**SLOTS, **values), CHANNEL_LAYERS=REDIS_LAYER, WSGI_APPLICATION="testproject.wsgi.application"
    ):
        assert ids() == found


def test_w020_slots_with_a_layer_that_does_not_cross_processes() -> None:
    # Both slots serve during the drain window: a group message sent on one never reaches the other's clients.
    with override_settings(DEPLOYKIT=dk(**SLOTS, WORKERS=1)):
        assert ids() == ["deploykit.W020"]
    with override_settings(DEPLOYKIT=dk(**SLOTS), CHANNEL_LAYERS=REDIS_LAYER):
        assert ids() == []


@override_settings(DEPLOYKIT=dk(METRICS_PATH="/whoami/"))
def test_w026_metrics_path_shadows_a_page() -> None:
    [message] = checks.check_deploy()
    assert message.id == "deploykit.W026"
    assert "/whoami/" in message.msg and "testproject.chat.views.whoami" in message.msg


@override_settings(DEPLOYKIT=dk(METRICS_PATH="/-/ready", HEALTH_PATH="/-/ready"))
def test_w026_metrics_path_is_the_readiness_path() -> None:
    [message] = checks.check_deploy()
    assert message.id == "deploykit.W026" and "HEALTH_PATH" in message.msg


@override_settings(DEPLOYKIT=dk(METRICS_PATH="/-/metrics", HEALTH_PATH="/-/ready"))
def test_w026_is_silent_on_a_path_of_its_own() -> None:
    assert ids() == []
