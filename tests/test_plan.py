from __future__ import annotations

import os
import sys

import pytest
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.plan import Bind, build_plan

REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://r:6379/1"]}}}


def dk(**values: object) -> dict[str, object]:
    """tests/settings.py's DEPLOYKIT with ``values`` on top."""
    from tests import settings

    return {**settings.DEPLOYKIT, **values}


@override_settings(ALLOWED_HOSTS=["example.com", "www.example.com"])  # pytest-django adds "testserver"
def test_defaults_derive_from_django_settings() -> None:
    plan = build_plan()
    assert plan.app.name == "example"
    assert plan.app.settings_module == "tests.settings"
    assert plan.app.asgi_target == "testproject.asgi:application"
    assert plan.site.server_names == ("example.com", "www.example.com")
    assert plan.site.static_url == "/static/"
    assert plan.site.static_root == "/srv/example/static"
    assert plan.site.media_url == "/media/"
    # Not DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which does not limit file uploads (issue 12 item 7).
    assert plan.site.max_body_size == 100 * 1024 * 1024
    assert plan.site.root_path == ""
    assert plan.site.tls is None
    assert plan.process_manager.python == "/srv/example/venv/bin/python"
    assert plan.process_manager.runtime_directory == "/run/example"
    assert plan.process_manager.env_file == "/etc/example/env"
    assert plan.process_manager.stop_timeout > plan.server.graceful_timeout
    assert plan.server.address == Bind("unix", path="/run/example/example.sock")
    assert plan.server.listen == plan.server.address
    assert plan.site.upstream == (plan.server.address,)
    # A unix socket has no peer address: trusting it is what makes proxy headers work.
    assert plan.server.forwarded_allow_ips == ("*",)


def test_plan_is_immutable() -> None:
    plan = build_plan()
    with pytest.raises(AttributeError):
        plan.server.workers = 3  # type: ignore[misc]


def test_override_settings_reaches_the_plan() -> None:
    assert build_plan().server.graceful_timeout == 30
    with override_settings(DEPLOYKIT=dk(GRACEFUL_TIMEOUT=12)):
        assert build_plan().server.graceful_timeout == 12
    assert build_plan().server.graceful_timeout == 30
    with override_settings(ALLOWED_HOSTS=["chat.example.org"], FORCE_SCRIPT_NAME="/chat/"):
        plan = build_plan()
        assert plan.site.server_names == ("chat.example.org",)
        assert plan.site.root_path == plan.server.root_path == "/chat"


def test_default_server_is_uvicorn_when_installed_and_printed() -> None:
    plan = build_plan()
    assert plan.server.backend == "uvicorn"
    assert any("uvicorn (installed" in note for note in plan.notes)


def test_in_memory_layer_defaults_to_one_worker_redis_to_one_per_core() -> None:
    plan = build_plan()
    assert plan.channel_layer.kind == "memory"
    assert plan.server.workers == 1
    assert any("does not cross processes" in note for note in plan.notes)
    with override_settings(CHANNEL_LAYERS=REDIS):
        plan = build_plan()
        assert plan.channel_layer.kind == "redis"
        assert plan.channel_layer.hosts == ("redis://r:6379/1",)
        assert plan.channel_layer.capacity is None
        assert plan.server.workers == (os.cpu_count() or 1)


def test_redis_url_only_feeds_the_writer_channel_layers_is_what_runs() -> None:
    # CHANNEL_LAYERS is the one source of truth: REDIS_URL does not make a layer
    # the app would not run (issue 12 item 2); E005 reports the missing one.
    with override_settings(DEPLOYKIT=dk(REDIS_URL="rediss://:pw@cache.internal:6380/2")):
        layer = build_plan().channel_layer
    assert layer.kind == "memory"  # tests.settings' CHANNEL_LAYERS
    assert layer.redis_url == "rediss://:pw@cache.internal:6380/2"
    assert layer.recommended_capacity == 1500 and layer.recommended_group_expiry == 86400


def test_sentinel_layer() -> None:
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"sentinels": [("10.0.0.5", 26379)], "master_name": "chat"}]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        layer = build_plan().channel_layer
    assert layer.kind == "sentinel"
    assert layer.sentinels == (("10.0.0.5", 26379),)
    assert layer.master_name == "chat"


def test_daphne_with_workers_is_refused_with_a_hint() -> None:
    with override_settings(DEPLOYKIT=dk(SERVER="daphne", WORKERS=2)):
        with pytest.raises(SpecError) as info:
            build_plan()
    assert 'DEPLOYKIT["WORKERS"] = 2' in str(info.value)
    assert "numprocs" in str(info.value)


def test_processes_get_their_own_sockets_or_ports() -> None:
    with override_settings(DEPLOYKIT=dk(SERVER="daphne", PROCESSES=2)):
        plan = build_plan()
    assert [str(b) for b in plan.server.addresses] == [
        "unix:/run/example/example-0.sock",
        "unix:/run/example/example-1.sock",
    ]
    assert plan.site.upstream == plan.server.addresses
    with override_settings(DEPLOYKIT=dk(SERVER="daphne", PROCESSES=2, BIND="127.0.0.1:9000")):
        plan = build_plan()
    assert [str(b) for b in plan.server.addresses] == ["127.0.0.1:9000", "127.0.0.1:9001"]


def test_supervisor_owns_one_socket_and_passes_fd_0() -> None:
    with override_settings(DEPLOYKIT=dk(PROCESS_MANAGER="supervisor", SERVER="uvicorn", PROCESSES=4)):
        plan = build_plan()
    assert plan.server.addresses == (Bind("unix", path="/run/example/example.sock"),)
    assert plan.server.listen == Bind("fd", fd=0)


def test_command_line_overrides_win_and_are_named_in_errors() -> None:
    plan = build_plan({"BIND": "127.0.0.1:8001"}, {"BIND": "addrport"})
    assert plan.server.address == Bind("tcp", host="127.0.0.1", port=8001)
    assert plan.server.forwarded_allow_ips == ("127.0.0.1", "::1")
    with pytest.raises(SpecError, match=r"^--workers = 0: must be between 1 and 256$"):
        build_plan({"WORKERS": 0}, {"WORKERS": "--workers"})
    with override_settings(DEPLOYKIT=dk(SOCKET="/run/x/x.sock")):
        # A command-line address wins over the socket in settings.
        assert build_plan({"BIND": "8002"}).server.address == Bind("tcp", host="127.0.0.1", port=8002)


def test_tls_and_hsts() -> None:
    settings = {
        "DEPLOYKIT": dk(TLS_CERTIFICATE="/etc/ssl/a.pem", TLS_CERTIFICATE_KEY="/etc/ssl/a.key"),
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    }
    with override_settings(**settings):
        site = build_plan().site
    assert site.tls is not None and site.tls.mode == "certificate"
    assert (site.hsts_seconds, site.hsts_include_subdomains, site.hsts_preload) == (3600, True, False)
    with override_settings(DEPLOYKIT=dk(TLS_CERTIFICATE="/etc/ssl/a.pem")):
        with pytest.raises(SpecError, match="TLS_CERTIFICATE_KEY"):
            build_plan()


def test_relative_static_url_gets_the_script_prefix_and_cdn_urls_are_not_served() -> None:
    with override_settings(STATIC_URL="static/", FORCE_SCRIPT_NAME="/app"):
        assert build_plan().site.static_url == "/app/static/"
    with override_settings(STATIC_URL="https://cdn.example.com/static/"):
        assert build_plan().site.static_url is None


def test_virtualenv_defaults_to_the_running_one() -> None:
    with override_settings(DEPLOYKIT={"NAME": "x"}):
        plan = build_plan()
    assert plan.process_manager.python == f"{sys.prefix}/bin/python"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"DEPLOYKIT": dk(WORKERS="4")}, "DEPLOYKIT[\"WORKERS\"] = '4': must be an integer"),
        ({"DEPLOYKIT": dk(WORKERS=True)}, 'DEPLOYKIT["WORKERS"] = True: must be an integer'),
        ({"DEPLOYKIT": dk(SERVER="bjoern")}, "DEPLOYKIT[\"SERVER\"] = 'bjoern': must be one of"),
        ({"DEPLOYKIT": dk(HTTP_PORT=70000)}, 'DEPLOYKIT["HTTP_PORT"] = 70000: must be between 1 and 65535'),
        ({"DEPLOYKIT": dk(SOCKET="run/app.sock")}, "must be an absolute path"),
        ({"DEPLOYKIT": dk(SOCKET="/run/a b.sock")}, "no spaces"),
        ({"DEPLOYKIT": dk(SOCKET="/run/" + "s" * 120)}, "107-byte socket path limit"),
        ({"DEPLOYKIT": dk(USER="root;rm")}, 'DEPLOYKIT["USER"]'),
        ({"DEPLOYKIT": dk(REDIS_URL="http://r")}, "redis://"),
        ({"DEPLOYKIT": "yes"}, "DEPLOYKIT = 'yes': must be a dict"),
        ({"ALLOWED_HOSTS": ["*"]}, "ALLOWED_HOSTS = ['*']: needs at least one host name"),
        ({"ALLOWED_HOSTS": ["x.com;\nlocation /leak { alias /etc/; }"]}, "ALLOWED_HOSTS = 'x.com;"),
        ({"FORCE_SCRIPT_NAME": "/a b"}, "FORCE_SCRIPT_NAME"),
        ({"STATIC_ROOT": "/srv/$static"}, "STATIC_ROOT = '/srv/$static'"),
        ({"ASGI_APPLICATION": "app"}, "ASGI_APPLICATION = 'app': must be 'module.attribute'"),
        ({"DEPLOYKIT": dk(ENVIRONMENT={"A": "x\nExecStartPre=/bin/sh"})}, "line breaks"),
        ({"DEPLOYKIT": dk(ENVIRONMENT={"A B": "x"})}, "environment variable name"),
    ],
)
def test_invalid_values_name_the_setting_and_show_the_value(settings: dict[str, object], message: str) -> None:
    with override_settings(**settings):
        with pytest.raises(SpecError) as info:
            build_plan()
    assert message in str(info.value)


def test_granian_cannot_take_an_inherited_socket() -> None:
    with override_settings(DEPLOYKIT=dk(SERVER="granian", PROCESS_MANAGER="supervisor")):
        with pytest.raises(SpecError, match="granian cannot take an inherited socket") as info:
            build_plan()
    assert str(info.value).startswith("DEPLOYKIT[\"PROCESS_MANAGER\"] = 'supervisor': ")


# The plan only reads the hosts; no connection is opened with the overridden DATABASES.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")
# Django 6.1 deprecates EMAIL_HOST (for MAILERS); projects on 4.2-6.0 still set it.
@pytest.mark.filterwarnings("ignore:The EMAIL_HOST setting is deprecated")
def test_peer_hosts_come_from_databases_and_email() -> None:
    databases = {
        "default": {"ENGINE": "django.db.backends.postgresql", "HOST": "10.0.0.7"},
        "local": {"ENGINE": "django.db.backends.postgresql", "HOST": "/var/run/postgresql"},
    }
    with override_settings(DATABASES=databases, EMAIL_HOST="smtp.example.com"):
        assert build_plan().app.peer_hosts == ("10.0.0.7", "smtp.example.com")
    with override_settings(EMAIL_HOST="mail;evil"):
        with pytest.raises(SpecError, match=r"^EMAIL_HOST = 'mail;evil'"):
            build_plan()


def test_peer_hosts_come_from_mailers() -> None:
    # Django 6.1: MAILERS replaces EMAIL_HOST; the SMTP backend connects to OPTIONS["host"].
    mailers = {
        "default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": {"host": "10.0.0.9"}},
        "console": {"BACKEND": "django.core.mail.backends.console.EmailBackend"},
    }
    with override_settings(MAILERS=mailers):
        assert build_plan().app.peer_hosts == ("10.0.0.9",)
    mailers["default"]["OPTIONS"] = {"host": "smtp;evil"}
    with override_settings(MAILERS=mailers):
        with pytest.raises(SpecError, match=r"""^MAILERS\["default"\]\["OPTIONS"\]\["host"\] = 'smtp;evil'"""):
            build_plan()
