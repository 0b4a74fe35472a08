"""What a new user hit on a project deploykit had never seen (the tester's report after issue 12).

Each test failed before its fix; the numbers are the report's.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit import checks
from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from tests import settings as test_settings

PY = "/srv/example/venv/bin/python"
REDIS_HOST = {"address": "redis://127.0.0.1:6379/0", "socket_timeout": None}
REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_HOST], "capacity": 1500},
    }
}


def dk(**values: object) -> dict[str, object]:
    return {**test_settings.DEPLOYKIT, **values}


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_1_hypercorn_creates_its_socket_group_writable_whatever_the_callers_umask() -> None:
    out, _ = run("runasgi", "--server", "hypercorn", "--uds", "/run/example/app.sock", "--print-command")
    argv = out.split()
    # hypercorn applies --umask to its unix sockets: 0o007 -> srwxrwx---, the proxy's group can connect.
    assert argv[argv.index("--umask") + 1] == "7"
    out, _ = run("runasgi", "--server", "hypercorn", "127.0.0.1:8123", "--print-command")
    assert "--umask" not in out.split()


def test_2_install_md_disables_debians_default_sites(tmp_path: Path) -> None:
    run("deployconfig", "all", "-o", str(tmp_path / "nginx"))
    assert "rm -f /etc/nginx/sites-enabled/default" in (tmp_path / "nginx" / "INSTALL.md").read_text()
    run("deployconfig", "all", "-o", str(tmp_path / "apache"), "--process-manager", "systemd")
    with override_settings(DEPLOYKIT=dk(PROXY="apache")):
        run("deployconfig", "all", "-o", str(tmp_path / "apache2"))
    assert "a2dissite 000-default" in (tmp_path / "apache2" / "INSTALL.md").read_text()


@override_settings(STATIC_URL="static/")
def test_3_a_command_line_root_path_with_a_relative_static_url_is_said(tmp_path: Path) -> None:
    _, err = run("runasgi", "--root-path", "/townhall", "--print-command")
    assert "deploykit.W008" in err
    _, err = run("deployconfig", "nginx", "--root-path", "/townhall")
    assert "deploykit.W008" in err


@override_settings(
    ALLOWED_HOSTS=["*", "example.com"],
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_HOST]}}},
    DEPLOYKIT=dk(WEBSOCKET_ROUTES=None),
)
def test_4_websocket_checks_apply_to_a_hand_written_asgi_py() -> None:
    # No WEBSOCKET_ROUTES (the app has its own asgi.py), but channels is installed: it serves WebSockets.
    ids = [m.id for m in checks.check_deploy()]
    assert "deploykit.E003" in ids and "deploykit.W002" in ids


def test_5_plain_check_imports_the_routes_and_warns_about_unknown_keys() -> None:
    with override_settings(DEPLOYKIT=dk(WEBSOCKET_ROUTES="testproject.routingg")):
        [message] = checks.check_app_settings()
        assert message.id == "deploykit.E001" and "testproject.routingg" in message.msg
    with override_settings(DEPLOYKIT=dk(WEBSOCKET_ROUTE="testproject.routing")):
        [message] = checks.check_app_settings()
        assert message.id == "deploykit.W012" and "'WEBSOCKET_ROUTES'" in message.msg


@pytest.mark.parametrize(
    ("settings", "setting", "shown"),
    [
        ({"ALLOWED_HOSTS": ["*"], "DEPLOYKIT": dk(SERVER_NAMES=None)}, "ALLOWED_HOSTS", "['*']"),
        ({"DEPLOYKIT": dk(HEALTH_PATH="ready")}, 'DEPLOYKIT["HEALTH_PATH"]', "'ready'"),
    ],
)
def test_8_errors_show_the_value_as_written(settings: dict[str, object], setting: str, shown: str) -> None:
    with override_settings(**settings), pytest.raises(SpecError) as caught:
        build_plan()
    assert str(caught.value).startswith(f"{setting} = {shown}:"), str(caught.value)


@override_settings(
    DEPLOYKIT=dk(REDIS_URL="redis://localhost:6379"),
    CHANNEL_LAYERS={"default": {**REDIS["default"], "CONFIG": {"hosts": [REDIS_HOST], "capacity": 1500}}},
)
def test_9_the_same_redis_written_two_ways_agrees() -> None:
    assert [m.id for m in checks.check_deploy() if m.id == "deploykit.E006"] == []


@override_settings(DEPLOYKIT=dk(WORKER=4, GRACEFULL_TIMEOUT=20))
def test_11_every_unknown_key_is_named() -> None:
    with pytest.raises(SpecError) as caught:
        build_plan()
    assert "WORKER" in str(caught.value) and "GRACEFULL_TIMEOUT" in str(caught.value)


def test_13_dry_run_predicts_the_refusal(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("mine\n")
    with pytest.raises(CommandError, match="exists; use --force"):
        run("deployconfig", "nginx", "-o", str(tmp_path / "nginx.conf"), "--dry-run")
    assert (tmp_path / "nginx.conf").read_text() == "mine\n"


@override_settings(DEPLOYKIT=dk(REDIS_URL="redis://10.0.0.9:6379/0"))
def test_14_deployconfig_says_what_runasgi_would_refuse() -> None:
    _, err = run("deployconfig", "systemd")
    assert "deploykit.E006" in err


def test_16_install_md_pastes_channel_layers_only_when_the_settings_have_none(tmp_path: Path) -> None:
    with override_settings(CHANNEL_LAYERS=REDIS):
        run("deployconfig", "all", "-o", str(tmp_path / "a"))
    assert "(CHANNEL_LAYERS)" not in (tmp_path / "a" / "INSTALL.md").read_text()
    with override_settings(CHANNEL_LAYERS={}):
        run("deployconfig", "all", "-o", str(tmp_path / "b"))
    assert "(CHANNEL_LAYERS)" in (tmp_path / "b" / "INSTALL.md").read_text()


def test_17_runasgi_help_shows_only_its_options() -> None:
    from deploykit.management.commands.runasgi import Command

    parser = Command().create_parser("manage.py", "runasgi")
    text = parser.format_help()
    assert "PLAN_" not in text
    for container_only in ("--image", "--tag", "--namespace", "--replicas", "--redis-url"):
        assert container_only not in text
