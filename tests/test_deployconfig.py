"""deployconfig's behaviour: output, -o, --force, --dry-run, --diff, --check, --list, template overrides."""

from __future__ import annotations

import re
import stat
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit.targets import TARGETS
from tests.conftest import require_tool

#: A plan that does not depend on this machine (cores, sys.prefix).
PLAN = ["--server", "uvicorn", "--workers", "2"]


def run(*args: str, **kwargs: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("deployconfig", *args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def test_list_shows_every_target_with_its_description() -> None:
    out, _ = run("--list")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [*TARGETS, "all"]
    assert re.search(r"^nginx +nginx site, included inside http\{\}", out, re.M)


def test_prints_to_stdout_and_notes_to_stderr() -> None:
    out, err = run("nginx", *PLAN)
    assert out.startswith("# example: nginx site")
    assert "server unix:/run/example/example.sock max_fails=0;" in out
    assert err.startswith("deploykit: server: uvicorn (--server)\n")
    # Two workers on the in-memory layer: runasgi would refuse it, deployconfig says so and writes.
    assert err.splitlines()[1].startswith("deploykit: warning: The in-memory channel layer is used with 2")


def test_plan_error_names_the_flag() -> None:
    with pytest.raises(CommandError, match=r"^--workers = 0: must be between 1 and 256"):
        run("nginx", "--server", "uvicorn", "--workers", "0")


def test_target_is_required() -> None:
    with pytest.raises(CommandError, match=r"^Name a target \(deployconfig --list shows them\)\.$"):
        run()


def test_explicit_is_for_asgi_only() -> None:
    with pytest.raises(CommandError, match=r"^--explicit applies to the asgi target only\.$"):
        run("nginx", "--explicit")
    out, _ = run("asgi", "--explicit")
    assert "AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))" in out


def test_output_writes_and_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "site.conf"
    out, _ = run("nginx", *PLAN, "-o", str(path))
    assert out == f"Wrote {path}\n"
    first = path.read_text()
    assert first == run("nginx", *PLAN)[0]
    with pytest.raises(CommandError, match=f"^{path} exists; use --force to overwrite it\\.$"):
        run("nginx", *PLAN, "--workers", "3", "-o", str(path))
    out, _ = run("nginx", *PLAN, "--uds", "/run/other/other.sock", "-o", str(path), "--force")
    assert out == f"Wrote {path}\n"
    assert "server unix:/run/other/other.sock max_fails=0;" in path.read_text()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "site.conf"
    out, _ = run("nginx", *PLAN, "-o", str(path), "--dry-run")
    assert out == f"Would write {path}\n"
    assert not path.exists()


def test_dry_run_and_diff_need_output() -> None:
    with pytest.raises(CommandError, match=r"^--diff needs -o PATH\.$"):
        run("nginx", "--diff")
    with pytest.raises(CommandError, match=r"^--dry-run needs -o PATH\.$"):
        run("nginx", "--dry-run")


def test_diff_exits_1_on_drift_and_0_when_equal(tmp_path: Path) -> None:
    path = tmp_path / "example.service"
    run("systemd", *PLAN, "-o", str(path))
    out, err = run("systemd", *PLAN, "-o", str(path), "--diff")
    assert (out, err.splitlines()[-1]) == ("", f"No changes: {path}")

    with pytest.raises(SystemExit) as exc:
        run("systemd", *PLAN, "--workers", "3", "-o", str(path), "--diff")
    assert exc.value.code == 1

    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("deployconfig", "systemd", *PLAN, "--workers", "3", "-o", str(path), "--diff", stdout=out)
    diff = out.getvalue().splitlines()
    assert diff[:2] == [f"--- {path}", f"+++ {path} (deployconfig)"]
    assert [line[0] + line.split("--workers ")[1][:1] for line in diff if "--workers" in line] == ["-2", "+3"]


def test_diff_against_a_missing_file_differs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run("env", "-o", str(tmp_path / "env"), "--diff")
    assert exc.value.code == 1


def test_check_runs_the_real_validator() -> None:
    require_tool("nginx")
    out, err = run("nginx", *PLAN, "--check")
    assert err.splitlines()[-1] == "Checked nginx: OK"
    assert out.startswith("# example: nginx site")


def test_project_template_overrides_and_a_failed_check_shows_the_tools_message(tmp_path: Path) -> None:
    require_tool("nginx")
    (tmp_path / "deploykit" / "nginx").mkdir(parents=True)
    (tmp_path / "deploykit" / "nginx" / "site.conf").write_text("# mine\nserver { listen 80; bogus_directive on; }\n")
    templates = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [str(tmp_path)]}]
    with override_settings(TEMPLATES=templates):
        assert run("nginx", *PLAN)[0] == "# mine\nserver { listen 80; bogus_directive on; }\n"
        with pytest.raises(CommandError, match=r'(?s)^nginx check failed:\n.*unknown directive "bogus_directive"'):
            run("nginx", *PLAN, "--check")


def test_check_failure_writes_nothing(tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    path = tmp_path / "example.service"
    # verify checks that ExecStart's binary exists: this virtualenv does not.
    with pytest.raises(CommandError, match=r"(?s)^systemd check failed:\n.*/srv/example/venv/bin/python"):
        run("systemd", *PLAN, "--check", "-o", str(path))
    assert not path.exists()


def test_env_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "env"
    run("env", "-o", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines()[-1] == 'DJANGO_SETTINGS_MODULE="tests.settings"'


def test_multi_file_target_prints_each_file_with_a_header() -> None:
    out, _ = run("logging", *PLAN)
    assert out.startswith("# ==> logging.py <==\n")
    assert "# ==> log-config.json <==\n{" in out


def test_all_needs_a_folder() -> None:
    with pytest.raises(CommandError, match=r"^all writes a folder: give -o DIR\.$"):
        run("all")


def test_all_writes_every_file_that_fits(tmp_path: Path) -> None:
    folder = tmp_path / "deploy"
    out, _ = run("all", *PLAN, "--redis-url", "redis://127.0.0.1:6379/0", "-o", str(folder))
    names = [line.removeprefix(f"Wrote {folder}/") for line in out.splitlines()]
    assert names[0] == "INSTALL.md"
    assert {"nginx.conf", "example.service", "env", "channel_layers.py", "logging.py"} <= set(names)
    assert not {"example.conf", "gunicorn.conf.py", "apache.conf", "Caddyfile", "example.socket"} & set(names)
    assert stat.S_IMODE((folder / "env").stat().st_mode) == 0o600
    install = (folder / "INSTALL.md").read_text()
    # The env file (secrets, what the settings read) before the first manage.py command (issue 12 item 9).
    # migrate and collectstatic: the release unit, enabled before the app starts (issue 17 item 2).
    order = [
        "useradd",
        "install -m 0600",
        "set -a",
        "daemon-reload",
        "enable example-release",
        "enable --now",
        "nginx -t",
    ]
    positions = [install.index(step) for step in order]
    assert positions == sorted(positions)


def test_all_check_runs_every_validator(tmp_path: Path) -> None:
    for tool in ("nginx", "systemd-analyze"):
        require_tool(tool)
    with pytest.raises(CommandError, match=r"(?s)^all check failed:\nexample.service: .*/srv/example/venv/bin/python"):
        run("all", *PLAN, "--check", "-o", str(tmp_path / "missing-venv"))
    assert not (tmp_path / "missing-venv").exists()
    # systemd-analyze verify wants ExecStart's binary: this virtualenv's python.
    with override_settings(DEPLOYKIT={"NAME": "example", "VIRTUALENV": sys.prefix, "REDIS_URL": "redis://127.0.0.1/0"}):
        _, err = run("all", *PLAN, "--check", "-o", str(tmp_path / "d"))
    assert err.splitlines()[-1] == "Checked all: OK"


def test_a_target_needing_what_the_plan_lacks_is_a_command_error(tmp_path: Path) -> None:
    # tests.settings has no HEALTH_PATH; the container targets need one for their probes.
    with pytest.raises(CommandError, match=r'^DEPLOYKIT\["HEALTH_PATH"\] = None: the container targets need'):
        run("dockerfile", "-o", str(tmp_path / "Dockerfile"))
    assert list(tmp_path.iterdir()) == []
