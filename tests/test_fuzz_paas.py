"""The PaaS formats (issue 17 item 5), fuzzed like the others: every value a validator lets through
comes back exactly from the real parser (tomllib for fly.toml, PyYAML for render.yaml, honcho's own
Procfile parser and then POSIX shell splitting for a Procfile command), per field and in whole files.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import yaml
from django.test import override_settings
from honcho.environ import parse_procfile
from hypothesis import assume, given
from hypothesis import strategies as st

from deploykit import processes, quoting
from deploykit.exceptions import SpecError
from deploykit.plan import Plan, build_plan
from deploykit.targets import TARGETS
from deploykit.targets.fly import toml_parser
from tests.test_fuzz import FIELDS, Tally, _field, _validated
from tests.test_paas import REDIS_LAYER, dk

#: tomllib (Python 3.11+) or tomli on 3.10, as the fly target's own check takes it.
tomllib = toml_parser()


def _procfile_commands(content: str) -> dict[str, list[str]]:
    return {name: shlex.split(cmd) for name, cmd in parse_procfile(content).processes.items()}


@pytest.mark.parametrize("field", list(FIELDS))
def test_toml_string(field: str) -> None:
    tally = Tally(f"{field} toml")

    @given(FIELDS[field][1])
    def prop(raw: str) -> None:
        tally.generated += 1
        value = _validated(field, raw)
        assume(value is not None)
        assert value is not None
        parsed = tomllib.loads(f"[env]\n  KEY = {quoting.toml_string(value)}\n  NEXT = 1\n")
        assert parsed == {"env": {"KEY": value, "NEXT": 1}}
        tally.checked += 1

    prop()
    tally.assert_enough_checked()


@pytest.mark.parametrize("field", list(FIELDS))
def test_procfile_command(field: str) -> None:
    tally = Tally(f"{field} procfile")

    @given(FIELDS[field][1])
    def prop(raw: str) -> None:
        tally.generated += 1
        value = _validated(field, raw)
        assume(value is not None)
        assert value is not None
        line = quoting.procfile_line("worker", quoting.shell_argv(["python", value, "--next"]))
        content = f"release: true\n{line}\nweb: true\n"
        assert _procfile_commands(content) == {
            "release": ["true"],
            "worker": ["python", value, "--next"],
            "web": ["true"],
        }
        tally.checked += 1

    prop()
    tally.assert_enough_checked()


def _plan(**values: Any) -> Plan | None:
    with override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(**values)):
        try:
            return build_plan()
        except SpecError:
            return None


def test_whole_files() -> None:
    """ENVIRONMENT values, HEALTH_PATH and background commands through the three real files."""
    tally = Tally("paas targets")
    env_values, url_paths = FIELDS["env_value"][1], FIELDS["url_path"][1]
    # Argv words from their own grammar (valid, nasty or spliced), so that enough whole plans pass
    # the three validators together for the tally to mean something.
    words = _field(r"-{0,2}[A-Za-z0-9._,:=/@+-]{1,16}")

    # Half the paths from the field's own grammar: a nasty path and a nasty word seldom both pass.
    health = st.one_of(url_paths, st.from_regex(r"/([A-Za-z0-9._~+@=,-]{1,8}/){0,4}", fullmatch=True))

    @given(env_values, health, st.lists(words, min_size=1, max_size=3))
    def prop(value: str, health: str, words: list[str]) -> None:
        tally.generated += 1
        # A Celery worker's extra arguments: words validated by the BACKGROUND_PROCESSES reader.
        worker = {"kind": "celery-worker", "app": "mysite.celery_app", "args": words}
        plan = _plan(
            PLATFORM="fly", ENVIRONMENT={"GREETING": value}, HEALTH_PATH=health, BACKGROUND_PROCESSES={"worker": worker}
        )
        assume(plan is not None)
        assert plan is not None
        [process] = plan.container.processes.background
        on_platform = ["python", *process.args]

        fly = tomllib.loads(TARGETS["fly"](plan).render())
        assert fly["env"] == {"GREETING": value}
        assert fly["http_service"]["checks"][0]["path"] == plan.app.health_path
        assert shlex.split(fly["processes"]["worker"]) == processes.argv(plan.in_container(), process)

        blueprint = yaml.safe_load(TARGETS["render"](plan).render())
        web, worker_service = blueprint["services"][:2]
        assert {e["key"]: e.get("value") for e in web["envVars"]}["GREETING"] == value
        assert web["healthCheckPath"] == plan.app.health_path
        assert shlex.split(worker_service["startCommand"]) == on_platform
        assert on_platform[-len(words) :] == words

        assert _procfile_commands(TARGETS["procfile"](plan).render())["worker"] == on_platform
        tally.checked += 1

    prop()
    tally.assert_enough_checked()
