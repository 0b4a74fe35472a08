"""The real targets, rendered from plans with generated values, parsed back whole.

Values go in through settings (so through the validators); whatever the plan
accepts must come back exactly from the real file, with the same directive
structure as a plain plan's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import assume, given
from hypothesis import strategies as st

from deploykit.exceptions import SpecError
from deploykit.plan import Plan, build_plan
from deploykit.servers import get_backend
from deploykit.targets import TARGETS
from deploykit.targets.supervisor import parse as supervisor_parse
from tests import parsers
from tests import settings as test_settings
from tests.test_fuzz import FIELDS, Tally

hostnames = st.lists(FIELDS["hostname"][1], min_size=1, max_size=3)
paths = FIELDS["absolute_path"][1]
env_values = FIELDS["env_value"][1]


def _plan(**values: Any) -> Plan | None:
    with override_settings(DEPLOYKIT={**test_settings.DEPLOYKIT, **values}):
        try:
            return build_plan()
        except SpecError:
            return None


def _shape(tree: list[Any]) -> list[Any]:
    return [[name, _shape(block) if block is not None else None] for name, _, block in tree]


def _nginx(plan: Plan, path: Path) -> list[Any]:
    path.write_text("".join(f.content for f in TARGETS["nginx"](plan).files()), encoding="utf-8")
    return parsers.nginx_tree(path)


def _walk(tree: list[Any]) -> Iterator[list[Any]]:
    for node in tree:
        yield node
        if node[2] is not None:
            yield from _walk(node[2])


def test_nginx_target(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("nginx-target")
    baseline = _nginx(build_plan(), workdir / "base.conf")
    tally = Tally("nginx target")

    @given(hostnames, paths)
    def prop(names: list[str], root: str) -> None:
        tally.generated += 1
        with override_settings(STATIC_ROOT=root):
            plan = _plan(SERVER_NAMES=names)
        assume(plan is not None and plan.site.static_root is not None)  # refused, or no static location to compare
        assert plan is not None
        tree = _nginx(plan, workdir / "site.conf")
        assert _shape(tree) == _shape(baseline)
        server_names = [args for name, args, _ in _walk(tree) if name == "server_name"]
        # As a Host header carries them: IPv6 literals in brackets.
        assert server_names and all(args == list(plan.site.hosts) for args in server_names)
        assert plan.site.static_root is not None
        assert any(
            plan.site.static_root in " ".join(args) for name, args, _ in _walk(tree) if name in ("alias", "root")
        )
        tally.checked += 1

    prop()
    # Seen 3 to 6%: one to three hostnames and a path, each refused more often than not.
    tally.assert_enough_checked(minimum=0.01)


def _unit(plan: Plan) -> list[tuple[str, str, str]]:
    files = TARGETS["systemd"](plan).files()
    service = next(f for f in files if f.name.endswith(".service"))
    return parsers.systemd_unit(service.content)


def test_systemd_target() -> None:
    baseline = [k for _, k, _ in _unit(build_plan())]
    tally = Tally("systemd target")

    @given(paths, paths)
    def prop(workdir: str, venv: str) -> None:
        tally.generated += 1
        plan = _plan(WORKING_DIRECTORY=workdir, VIRTUALENV=venv)
        assume(plan is not None)
        assert plan is not None
        unit = _unit(plan)
        assert [k for _, k, _ in unit] == baseline
        values = {k: val for _, k, val in unit}
        assert parsers.systemd_exec(values["ExecStart"]) == get_backend(plan).argv()
        assert parsers.systemd_value(values["WorkingDirectory"]) == plan.process_manager.working_directory
        tally.checked += 1

    prop()
    tally.assert_enough_checked()


def test_supervisor_target(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("supervisor-target")
    tally = Tally("supervisor target")

    @given(paths, env_values)
    def prop(venv: str, value: str) -> None:
        tally.generated += 1
        plan = _plan(PROCESS_MANAGER="supervisor", VIRTUALENV=venv, ENVIRONMENT={"DEPLOYKIT_FUZZ": value})
        assume(plan is not None)
        assert plan is not None
        content = TARGETS["supervisor"](plan).render()
        processes = supervisor_parse(content, workdir)
        assert [argv for _, argv, _ in processes] == [get_backend(plan).argv()] * plan.server.processes
        assert all(env["DEPLOYKIT_FUZZ"] == value for _, _, env in processes)
        tally.checked += 1

    prop()
    tally.assert_enough_checked()


def test_env_target() -> None:
    tally = Tally("env target")

    @given(env_values)
    def prop(value: str) -> None:
        tally.generated += 1
        plan = _plan(ENVIRONMENT={"DEPLOYKIT_FUZZ": value})
        assume(plan is not None)
        assert plan is not None
        content = TARGETS["env"](plan).render()
        assert parsers.systemd_env_file(content)["DEPLOYKIT_FUZZ"] == value
        tally.checked += 1

    prop()
    tally.assert_enough_checked()
