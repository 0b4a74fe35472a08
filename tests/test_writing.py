"""write_atomic: readers see the old file or the new one, never a part, even when the writer is killed."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from deploykit.writing import WriteError, write_atomic
from tests.conftest import require_tool

SIZE = 8 * 1024 * 1024
CHILD = f"""
import sys
from pathlib import Path
from deploykit.writing import write_atomic
content = sys.argv[2] * {SIZE}
print("writing", flush=True)  # the parent times its kill from here, not from interpreter start
write_atomic(Path(sys.argv[1]), content, force=True)
"""
#: Kills per run: each at a random point between the write's start and its end.
KILLS = 25


NOBODY_SCRIPT = (
    "import sys; from pathlib import Path; from deploykit.writing import WriteError, write_atomic\n"
    "try:\n    write_atomic(Path(sys.argv[1]), 'x')\nexcept WriteError as exc:\n    print(exc); sys.exit(3)\n"
)


def _write_as_nobody(target: Path) -> subprocess.CompletedProcess[str]:
    """write_atomic in a child running as nobody (tests run as root, for whom every directory is writable)."""
    if os.geteuid() != 0:
        pytest.fail("this test drops to nobody with setpriv and needs root to do so")
    root = str(Path(__file__).parent.parent)
    return subprocess.run(
        [
            require_tool("setpriv"),
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            # Debian's python (supervisor depends on it): a pyenv or tox interpreter
            # under /root may not be loadable by nobody. writing.py needs only the stdlib.
            "/usr/bin/python3",
            "-c",
            NOBODY_SCRIPT,
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )


def _spawn(target: Path, char: str) -> subprocess.Popen[bytes]:
    """A writer, returned once it is about to write."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), char], cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"writing\n"
    return child


def test_killed_writer_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "site.conf"
    target.write_text("a" * SIZE)
    writer = _spawn(target, "b")
    started = time.monotonic()
    writer.wait(timeout=60)
    duration = time.monotonic() - started
    assert target.read_text() == "b" * SIZE

    rng = random.Random(4)
    litter_seen = 0
    contents = {"a" * SIZE, "b" * SIZE}
    for i in range(KILLS):
        new = "ab"[i % 2]
        child = _spawn(target, new)
        try:
            time.sleep(rng.uniform(0, duration))
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=30)
        assert target.read_text() in contents
        litter = [p for p in tmp_path.iterdir() if p.name.startswith(".site.conf.")]
        litter_seen += bool(litter)
        for p in litter:  # what an operator (or the next run) would find and remove
            p.unlink()
    # Some kills must have landed mid-write (a temp file was left), or this proved nothing.
    assert litter_seen > 0
    # Litter from a killed writer does not break the next write.
    (tmp_path / ".site.conf.leftover.tmp").write_text("x")
    write_atomic(target, "final\n", force=True)
    assert target.read_text() == "final\n"


def test_writes_with_mode_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "unit.service"
    write_atomic(target, "one\n", mode=0o640)
    assert target.read_text() == "one\n"
    assert target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(WriteError, match="exists; use --force"):
        write_atomic(target, "two\n")
    write_atomic(target, "two\n", force=True)
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unit.service"]


def test_symlink_output_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "shadow"
    victim.write_text("root:x:0:0\n")
    link = tmp_path / "site.conf"
    link.symlink_to(victim)
    with pytest.raises(WriteError, match="is a symbolic link"):
        write_atomic(link, "pwned\n", force=True)
    assert victim.read_text() == "root:x:0:0\n"


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="does not exist"):
        write_atomic(tmp_path / "no" / "site.conf", "x")


def test_unwritable_directory_is_a_clear_error(request: pytest.FixtureRequest) -> None:
    # pytest's tmp_path lies under a 0700 directory that nobody cannot enter.
    base = Path(tempfile.mkdtemp(prefix="deploykit-unwritable-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(base))
    base.chmod(0o755)
    directory = base / "etc"
    directory.mkdir(mode=0o755)
    result = _write_as_nobody(directory / "f")
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == f"{directory} is not writable."
    assert list(directory.iterdir()) == []


def test_untraversable_directory_is_a_clear_error(tmp_path: Path) -> None:
    """nobody cannot enter pytest's 0700 temp root: a WriteError, not a PermissionError traceback."""
    target = tmp_path / "f"
    result = _write_as_nobody(target)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == f"{target}: Permission denied."


def test_read_only_filesystem_is_a_clear_error() -> None:
    """/proc/sys is mounted read-only in containers; as root os.access may still say yes, mkstemp fails."""
    directory = Path("/proc/sys/kernel")
    with pytest.raises(WriteError, match="is not writable"):
        write_atomic(directory / "deploykit-test", "x")
