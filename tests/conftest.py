from __future__ import annotations

import shutil

import pytest


def require_tool(name: str) -> str:
    """The path of a real tool; a missing tool fails the test (never a skip): tests/setup.sh installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run tests/setup.sh (README's test command does)")
    return path
