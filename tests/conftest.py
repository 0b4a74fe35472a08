from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Generator
from pathlib import Path
from typing import NoReturn

import pytest

#: Set by .ci/run: there a missing tool fails its test, so CI stays as strict as the suite was.
STRICT_TOOLS = "DEPLOYKIT_STRICT_TOOLS"


def missing_tool(reason: str) -> NoReturn:
    """Skip the test, saying why; fail it when ``DEPLOYKIT_STRICT_TOOLS=1`` (CI)."""
    reason += " (tests/setup.sh installs it)"
    if os.environ.get(STRICT_TOOLS) == "1":
        pytest.fail(f"{reason}; {STRICT_TOOLS}=1 makes a missing tool a failure")
    pytest.skip(reason)


#: Tools whose pins clash with the test environment's get a virtualenv each here (tests/setup.sh: checkov).
TOOLS = Path(__file__).resolve().parent.parent / ".tools"


def require_tool(name: str) -> str:
    """The path of a real tool; a missing one skips the test on a developer's machine and fails it in CI.

    Looked up on PATH, then next to the interpreter (tools from PyPI in the test virtualenv, which need not
    be on PATH), then in .tools/*/bin.
    """
    elsewhere = [str(Path(sys.executable).parent), *(str(p) for p in sorted(TOOLS.glob("*/bin")))]
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(elsewhere))
    if path is None:
        missing_tool(f"{name} is not installed")
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A target's validator whose tool is missing (``ToolMissing``) is a missing tool like any other."""
    # Imported here: bench/ uses tests.procs (and so this module) without Django set up.
    from deploykit.targets import ToolMissing

    try:
        return (yield)
    except ToolMissing as exc:
        # "... has no validator" is a test calling a target that has none: a bug, not a missing tool.
        if "is not installed" not in str(exc):
            raise
        missing_tool(str(exc))
