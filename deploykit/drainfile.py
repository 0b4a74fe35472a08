"""The drain file: how a drain starts, how a server process knows it drains, how the starter knows it is over.

A drain (issue 16) is started by creating the server's drain file
(``DEPLOYKIT_SERVER_DRAIN_FILE``, :mod:`deploykit.serverenv`): :func:`start`, which
``python -m deploykit.drain start`` calls from systemd's ``ExecStop=``, the
Kubernetes ``preStop`` hook and the slots switch. Every process of the server
(any server, any number of workers, any process manager) sees the file by itself,
with a ``stat``: nothing depends on the server's own signal handling.

A file older than the server belongs to an earlier run and is ignored, so a
restarted server does not drain at once (systemd empties the runtime directory
at each start anyway; supervisor's folder and a pod's emptyDir are kept). "The
server" is the process group leader: a worker that the server starts during a
drain (a recycled one) still belongs to it.

Each draining process writes how many WebSockets it still has open to
``DRAIN_FILE.PID``; :func:`wait` returns when every live process says 0, or when
the window (and :data:`WAIT_MARGIN`) has passed.

Importing this module imports nothing from Django, asyncio or the plan.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

#: Seconds between two looks at the drain file by a server process (and between the starter's looks at the
#: counts): a stat every half second costs nothing, and a drain of DRAIN_TIMEOUT seconds starts at most this late.
POLL = 0.5
#: Seconds the starter waits past the window: the last close, then the application's websocket_disconnect
#: (deploykit.drain.APP_CLOSE_GRACE), then the last count written. The plan's stop timeouts add it
#: (deploykit.plan.process.DRAIN_WAIT_MARGIN, the same number).
WAIT_MARGIN = 3.0


def _boot_clock() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@functools.cache
def _process_start(pid: int) -> float | None:
    """When ``pid`` started, on the boot clock (the kernel's own record: /proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


#: The fallback where /proc cannot tell: when this module was imported (at the latest, when the server loaded
#: the application), on the boot clock.
_IMPORTED = _boot_clock()


def server_started() -> float:
    """When this server started, on the boot clock: its process group leader's start, else this process's."""
    for pid in (os.getpgrp(), os.getpid()):
        started = _process_start(pid)
        if started is not None:
            return started
    return _IMPORTED


def began(path: str) -> float | None:
    """When the drain of this server began (the drain file's time, epoch seconds), or None: no drain.

    A file from before this server started is an earlier run's, and means no drain.
    """
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    # The file's time on the boot clock, where the kernel keeps process start times.
    age = time.time() - mtime
    return mtime if _boot_clock() - age > server_started() else None


def start(path: str) -> float:
    """Start a drain now (create or touch the drain file); return its start time, epoch seconds.

    A drain already under way keeps its processes' schedules; only the starter's wait starts again. Counts
    left by processes that are gone are removed.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
    os.close(fd)
    os.utime(path)
    for pid, count_file in _count_files(path):
        if not _alive(pid):
            count_file.unlink(missing_ok=True)
    return os.stat(path).st_mtime


def report(path: str, open_websockets: int) -> None:
    """Write this process's count of open WebSockets (a draining process, when it changes)."""
    target = f"{path}.{os.getpid()}"
    tmp = f"{target}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(str(open_websockets))
    os.replace(tmp, target)  # a reader sees the old count or the new one, never half a number


def _count_files(path: str) -> list[tuple[int, Path]]:
    drain = Path(path)
    found = []
    for entry in drain.parent.glob(f"{drain.name}.*"):
        suffix = entry.name[len(drain.name) + 1 :]
        if suffix.isdigit():
            found.append((int(suffix), entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_websockets(path: str, since: float) -> dict[int, int]:
    """{pid: WebSockets still open} of the live processes that reported during the drain begun at ``since``."""
    counts: dict[int, int] = {}
    for pid, count_file in _count_files(path):
        try:
            if count_file.stat().st_mtime < since or not _alive(pid):
                continue
            counts[pid] = int(count_file.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue  # gone between the listing and the read
    return counts


def wait(path: str, timeout: float, since: float, *, at_least: float = 0.0) -> dict[int, int]:
    """Wait until the processes that had WebSockets report none open, or the window ends; return what is left.

    At least two polls after ``since`` (every process with a WebSocket has seen the file and reported by then;
    a process without one writes nothing and has nothing to drain), and at least ``at_least`` seconds (the
    Kubernetes preStop hook keeps serving while the ingress controller drops the pod).
    """
    earliest = since + max(at_least, 2 * POLL + 0.1)
    deadline = max(earliest, since + timeout + WAIT_MARGIN)
    while True:
        now = time.time()
        left = open_websockets(path, since)
        if now >= deadline or (now >= earliest and not any(left.values())):
            return {pid: n for pid, n in left.items() if n}
        time.sleep(min(0.1, max(0.0, deadline - now)))
