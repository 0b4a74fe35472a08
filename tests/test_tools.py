"""A missing real tool skips its test on a developer's machine and fails it in CI (DEPLOYKIT_STRICT_TOOLS=1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploykit.targets import ToolMissing
from tests import conftest
from tests.conftest import STRICT_TOOLS, require_tool


@pytest.fixture
def empty_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_a_tool_on_path_is_its_path(empty_path: Path) -> None:
    tool = empty_path / "nginx"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert require_tool("nginx") == str(tool)


def test_a_missing_tool_skips_with_the_reason(empty_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_TOOLS, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^nginx is not installed \(tests/setup.sh installs it\)$"):
        require_tool("nginx")


def test_a_missing_tool_fails_in_strict_mode(empty_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_TOOLS, "1")
    with pytest.raises(pytest.fail.Exception, match=r"^nginx is not installed .*DEPLOYKIT_STRICT_TOOLS=1"):
        require_tool("nginx")


def _call_raising(exc: Exception) -> None:
    """Run the conftest's runtest hook around a test call that raises ``exc``."""
    wrapper = conftest.pytest_runtest_call(item=None)  # type: ignore[arg-type]  # the hook never reads it
    next(wrapper)
    wrapper.throw(exc)


@pytest.mark.parametrize(("strict", "outcome"), [("", pytest.skip.Exception), ("1", pytest.fail.Exception)])
def test_a_validator_without_its_tool_is_a_missing_tool(
    strict: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STRICT_TOOLS, strict)
    with pytest.raises(outcome, match=r"^caddy is not installed"):
        _call_raising(ToolMissing("caddy is not installed"))


def test_a_target_without_a_validator_is_not_a_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_TOOLS, raising=False)
    with pytest.raises(ToolMissing, match="has no validator"):
        _call_raising(ToolMissing("env has no validator"))
