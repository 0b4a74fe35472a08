"""The app runs in its own group; the proxy's group reaches the socket and nothing else (issue 14 item 6)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.targets.bundle import files
from deploykit.targets.supervisor import Supervisor
from deploykit.targets.systemd import Systemd, SystemdSocket
from tests.conftest import require_tool


def lines(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def test_the_service_runs_in_its_own_group_and_the_proxy_reaches_the_socket_directory() -> None:
    plan = build_plan({})
    unit = Systemd(plan).render()
    print("\n".join(line for line in unit.splitlines() if re.match(r"(User|Group|Runtime|ExecStartPre|UMask)", line)))
    assert plan.process_manager.group == plan.process_manager.user == "example"
    assert lines(unit, "Group") == ["example"]
    # The socket directory: the app's, the proxy's group may enter it (and connect), others not.
    assert lines(unit, "RuntimeDirectoryMode") == ["2750"]
    assert lines(unit, "ExecStartPre") == ["+/usr/bin/chgrp www-data /run/example"]


def test_the_unit_stays_hardened(tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    target = Systemd(build_plan({"VIRTUALENV": sys.prefix}))  # verify wants ExecStart's binary
    target.validate(target.render(), tmp_path)  # systemd-analyze verify, and security <= 1.0


@pytest.mark.parametrize(("proxy", "group"), [("nginx", "www-data"), ("apache", "www-data"), ("caddy", "caddy")])
def test_the_proxy_group_follows_the_proxy(proxy: str, group: str) -> None:
    assert build_plan({"PROXY": proxy}).process_manager.proxy_group == group


def test_groups_can_be_set_and_are_validated() -> None:
    plan = build_plan({"GROUP": "apps", "PROXY_GROUP": "web"})
    assert (plan.process_manager.group, plan.process_manager.proxy_group) == ("apps", "web")
    with pytest.raises(SpecError, match=r'DEPLOYKIT\["PROXY_GROUP"\]'):
        build_plan({"PROXY_GROUP": "bad group"})


def test_socket_activation_gives_the_socket_to_the_proxy_group() -> None:
    unit = SystemdSocket(build_plan({"FD": 3})).render()
    assert lines(unit, "SocketUser") == ["example"]
    assert lines(unit, "SocketGroup") == ["www-data"]
    assert lines(unit, "SocketMode") == ["0660"]


def test_supervisor_socket_belongs_to_the_proxy_group() -> None:
    plan = build_plan({"PROCESS_MANAGER": "supervisor", "SERVER": "uvicorn", "FD": 0})
    conf = Supervisor(plan).render()
    assert lines(conf, "socket_owner") == ["example:www-data"]
    assert lines(conf, "user") == ["example"]


def test_install_creates_the_apps_own_group() -> None:
    install = next(f.content for f in files(build_plan({})) if f.name == "INSTALL.md")
    print(next(line for line in install.splitlines() if "useradd" in line))
    assert "groupadd --system example" in install
    assert "--gid example example" in install
    assert "www-data" not in next(line for line in install.splitlines() if "useradd" in line)
