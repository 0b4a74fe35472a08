"""deploykit.logformat (the JSON formatter the server process loads) and the logging target's use of the backends."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from deploykit.plan import build_plan
from deploykit.servers import BACKENDS
from deploykit.targets.logconfig import Logging, logging_config


def test_the_old_dotted_path_is_the_same_class() -> None:
    # Users paste deploykit.targets.logconfig.JsonFormatter into their LOGGING: it keeps working.
    from deploykit.logformat import JsonFormatter
    from deploykit.targets.logconfig import JsonFormatter as Pasted

    assert Pasted is JsonFormatter


def test_the_generated_config_names_the_runtime_module() -> None:
    config = logging_config(build_plan({"LOG_FORMAT": "json"}))
    assert config["formatters"] == {"json": {"()": "deploykit.logformat.JsonFormatter"}}


def test_importing_it_loads_neither_django_nor_the_plan() -> None:
    code = (
        "import sys, deploykit.logformat\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'django' or m.startswith('deploykit.'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['deploykit.logformat']"


def test_one_json_object_per_line() -> None:
    from deploykit.logformat import JsonFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x.y", logging.ERROR, __file__, 1, "a %s", ("b",), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "x.y" and entry["message"] == "a b"
    assert "ValueError: boom" in entry["exc_info"]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_each_backend_owns_its_loggers_and_log_flag(backend: str) -> None:
    cls = BACKENDS[backend]
    plan = build_plan({"SERVER": backend})
    general, access = cls.loggers
    assert list(logging_config(plan)["loggers"]) == ["django", general, access]
    text = Logging(plan).render()
    if cls.log_config_option is None:
        assert "--log-config" not in text
    else:
        assert cls.log_config_option.format(path="log-config.json") in text
