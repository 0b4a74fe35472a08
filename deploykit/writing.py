"""Writing output files atomically: a temp file in the same directory, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class WriteError(Exception):
    pass


def write_atomic(path: Path, content: str, *, force: bool = False, mode: int = 0o644) -> None:
    """Write ``content`` to ``path`` so that readers see the old file or the new one, never a part.

    Refuses to replace an existing file unless ``force``, and refuses symlinks
    (a link planted in a shared directory must not redirect root's write).
    """
    check_destination(path, force=force)
    directory = path.parent
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        # os.access says yes to root even where the write fails (a read-only mount).
        raise WriteError(f"{directory} is not writable: {exc.strerror}.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):  # a full disk, a quota
            raise WriteError(f"{path}: {exc.strerror}.") from exc
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_destination(path: Path, *, force: bool = False) -> None:
    """Raise WriteError if ``path`` could not be written (exists, a link, no folder): before any write."""
    try:
        _check_target(path, force)
    except OSError as exc:
        raise WriteError(f"{path}: {exc.strerror}.") from exc


def _check_target(path: Path, force: bool) -> None:
    directory = path.parent
    if path.is_symlink():
        raise WriteError(f"{path} is a symbolic link; refusing to write through it.")
    if path.is_dir():
        raise WriteError(f"{path} is a directory.")
    if path.exists() and not force:
        raise WriteError(f"{path} exists; use --force to overwrite it.")
    if not directory.is_dir():
        raise WriteError(f"{directory} does not exist.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise WriteError(f"{directory} is not writable.")
