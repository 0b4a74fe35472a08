"""Two slots (issue 16) in every target: two services each, and a proxy upstream file for either slot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit.plan import Plan, build_plan
from deploykit.targets.apache import Apache
from deploykit.targets.caddy import Caddy
from deploykit.targets.compose import Compose
from deploykit.targets.nginx import Nginx
from deploykit.targets.supervisor import Supervisor, parse
from deploykit.targets.systemd import Systemd
from deploykit.targets.upstream import live_slot, upstream_content
from tests import settings as test_settings
from tests.conftest import require_tool


def slots_plan(**values: Any) -> Plan:
    settings: dict[str, Any] = {
        "DEPLOYKIT": {
            **test_settings.DEPLOYKIT,
            "VIRTUALENV": sys.prefix,
            "HEALTH_PATH": "/-/ready",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "SLOTS": ("blue", "green"),
            "IMAGE_TAG": "1.0",
            **values,
        },
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": None}]},
            }
        },
    }
    if "WSGI_SERVER" in values:
        settings["WSGI_APPLICATION"] = "testproject.wsgi.application"
    with override_settings(**settings):
        return build_plan()


@pytest.mark.parametrize("split", [False, True])
def test_systemd_writes_a_hardened_unit_per_slot(split: bool, tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    plan = slots_plan(**({"WSGI_SERVER": "gunicorn"} if split else {}))
    target = Systemd(plan)
    files = {f.name: f.content for f in target.files()}
    expected = ["example-blue.service", "example-green.service"]
    if split:
        expected = ["example-blue.service", "example-blue-http.service", "example-green.service"]
        expected += ["example-green-http.service"]
    assert list(files) == expected
    assert "--uds /run/example-green/example-green.sock" in files["example-green.service"]
    assert "RuntimeDirectory=example-green\n" in files["example-green.service"]
    assert "example-blue" not in files["example-green.service"]
    # Each slot drains on its own file (deploykit.drain), which redeploy creates for the old slot.
    assert (
        "Environment=DEPLOYKIT_SERVER_DRAIN_FILE=/run/example-green/example.drain\n" in files["example-green.service"]
    )
    target.check(target.files(), tmp_path)  # systemd-analyze verify + security <= 1.0, each unit


def test_supervisor_writes_a_program_per_slot(tmp_path: Path) -> None:
    plan = slots_plan(PROCESS_MANAGER="supervisor", WSGI_SERVER="gunicorn")
    programs = {name: argv for name, argv, _ in parse(Supervisor(plan).render(), tmp_path)}
    assert sorted({name.rsplit("_", 1)[0] for name in programs}) == [
        "example-blue",
        "example-blue-http",
        "example-green",
        "example-green-http",
    ]
    content = Supervisor(plan).render()
    assert "socket=unix:///run/example-green/example-green.sock" in content
    assert "socket=unix:///run/example-green-http/example-green-http.sock" in content


@pytest.mark.parametrize("proxy", ["nginx", "apache", "caddy"])
@pytest.mark.parametrize("split", [False, True])
def test_the_proxy_site_includes_the_upstream_file_and_passes_for_either_slot(
    proxy: str, split: bool, tmp_path: Path
) -> None:
    target_class = {"nginx": Nginx, "apache": Apache, "caddy": Caddy}[proxy]
    values: dict[str, Any] = {"PROXY": proxy, **({"WSGI_SERVER": "gunicorn"} if split else {})}
    plan = slots_plan(**values)
    target = target_class(plan)
    require_tool(target.tool or "")
    files = target.files()
    assert [f.name for f in files][1:] == [Path(plan.upstream_file or "").name]
    site = files[0].content
    assert plan.upstream_file in site
    assert "/run/example-blue/" not in site and "/run/example-green/" not in site
    assert "/run/example-blue/example-blue.sock" in files[1].content
    assert live_slot(files[1].content) == "blue"
    green = upstream_content(plan, "green")
    assert live_slot(green) == "green"
    assert "/run/example-green/example-green.sock" in green and "example-blue" not in green
    if split:
        assert "/run/example-green-http/example-green-http.sock" in green
    # The real tool, on the site with each slot's upstream file.
    target.check(files, tmp_path)


def test_a_broken_upstream_file_fails_the_check(tmp_path: Path) -> None:
    from deploykit.targets.base import RenderedFile, ValidationFailed

    require_tool("nginx")
    plan = slots_plan()
    target = Nginx(plan)
    with pytest.raises(ValidationFailed):
        target.validate_with_upstream(target.render(), "upstream broken {", tmp_path)
    del RenderedFile


def test_compose_runs_a_service_per_slot(tmp_path: Path) -> None:
    plan = slots_plan(CONTAINERS=True)
    target = Compose(plan)
    require_tool(target.tool or "")
    files = {f.name: f.content for f in target.files()}
    compose = files["docker-compose.yml"]
    assert "  app-blue:\n" in compose and "  app-green:\n" in compose
    assert '"./nginx-upstream:/etc/nginx/upstream:ro"' in compose
    assert "include /etc/nginx/upstream/example-upstream.conf;" in files["nginx-compose.conf"]
    assert "server app-blue:8000 resolve;" in files["nginx-upstream/example-upstream.conf"]
    target.check(target.files(), tmp_path)


@pytest.mark.parametrize("manager", ["systemd", "supervisor"])
def test_install_md_installs_both_slots_and_shows_the_redeploy_command(manager: str) -> None:
    from deploykit.targets import bundle

    plan = slots_plan(PROCESS_MANAGER=manager, WSGI_SERVER="gunicorn")
    files = {f.name: f.content for f in bundle.files(plan)}
    guide = files["INSTALL.md"]
    assert "example-upstream.conf" in files
    assert "install -m 0644 example-upstream.conf /etc/nginx/example-upstream.conf" in guide
    assert "manage.py redeploy --dry-run" in guide and "manage.py redeploy\n" in guide
    if manager == "systemd":
        # The command shown is the first slot's.
        assert "--bind unix:/run/example-blue-http/example-blue-http.sock" in guide
        for unit in ("example-blue", "example-blue-http", "example-green", "example-green-http"):
            assert f"install -m 0644 {unit}.service /etc/systemd/system/{unit}.service" in guide
        assert "systemctl start example-blue.service example-blue-http.service" in guide
    else:
        assert "install -d -o example -g www-data -m 0750 /run/example-green-http" in guide


def test_deployconfig_all_with_slots_checks_every_file(tmp_path: Path) -> None:
    from io import StringIO

    from django.core.management import call_command

    require_tool("nginx")
    require_tool("systemd-analyze")
    values = {
        **test_settings.DEPLOYKIT,
        "VIRTUALENV": sys.prefix,
        "HEALTH_PATH": "/-/ready",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SLOTS": ("blue", "green"),
    }
    layer = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": None}]},
        }
    }
    err = StringIO()
    with override_settings(DEPLOYKIT=values, CHANNEL_LAYERS=layer):
        call_command("deployconfig", "all", "--check", "-o", str(tmp_path / "deploy"), stdout=StringIO(), stderr=err)
    written = sorted(p.name for p in (tmp_path / "deploy").iterdir())
    assert {"example-blue.service", "example-green.service", "example-upstream.conf", "nginx.conf"} <= set(written)
    assert "Checked all: OK" in err.getvalue()
