"""Two slots (issue 16) on real-shaped projects (tests/projects/): the files pass their tools, and redeploy
knows what it would do, through each project's own manage.py."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.procs import PROJECTS, project_env, project_manage, settings_variant, short_tmpdir

CASES = {
    # The Channels tutorial: no DEPLOYKIT at all, channels_redis with a (host, port) tuple.
    "tutorial": ("mysite.settings", "mysite", "{}"),
    # README's own snippet.
    "readme": ("myproject.settings", "myproject", "DEPLOYKIT"),
}


@pytest.fixture
def tmp() -> Iterator[Path]:
    path = short_tmpdir("slotproj")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("project", list(CASES))
def test_slots_on_a_real_shaped_project(project: str, tmp: Path) -> None:
    for tool in ("nginx", "systemd-analyze"):
        require_tool(tool)
    settings, name, base = CASES[project]
    upstream = tmp / "upstream.conf"
    body = (
        # NAME: the project's own (the variant module's package would name it otherwise).
        f"DEPLOYKIT = {{**{base}, 'NAME': {name!r}, 'HEALTH_PATH': '/-/ready', 'SLOTS': ('blue', 'green'), "
        f"'UPSTREAM_FILE': {str(upstream)!r}, 'VIRTUALENV': {sys.prefix!r}}}"
    )
    variants = settings_variant(tmp / "variants", "slots_settings", settings, body)
    env = project_env(PROJECTS / project, variants, DJANGO_SETTINGS_MODULE="slots_settings")
    out = tmp / "deploy"
    done = project_manage(PROJECTS / project, env, "deployconfig", "all", "--check", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Checked all: OK" in done.stderr
    written = {p.name for p in out.iterdir()}
    assert {f"{name}-blue.service", f"{name}-green.service", upstream.name, "nginx.conf"} <= written
    assert f"include {upstream};" in (out / "nginx.conf").read_text()
    # Installed as INSTALL.md says: the upstream file names the first slot, so redeploy switches to the other.
    shutil.copy(out / upstream.name, upstream)
    done = project_manage(PROJECTS / project, env, "redeploy", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "1. live slot: blue" in done.stdout
    assert f"start slot green: systemctl restart {name}-green.service" in done.stdout
    assert f"stop slot blue: systemctl stop {name}-blue.service" in done.stdout
