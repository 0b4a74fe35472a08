"""The wheel ships the templates and py.typed (built for real, then listed)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_and_py_typed(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("deploykit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "deploykit/py.typed" in names
    templates = {p.relative_to(ROOT).as_posix() for p in (ROOT / "deploykit" / "templates").rglob("*") if p.is_file()}
    assert templates, "no templates found in the source tree"
    assert templates <= names, sorted(templates - names)
    assert not any(n.startswith(("tests/", "testproject/")) for n in names)
