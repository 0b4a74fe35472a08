"""The benchmark's processes, on the test suite's helpers (tests/procs.py): the set of a run, waits, CPU accounting.

Every process runs in its own session (tests.procs.Proc), so stopping it ends
the whole group: uvicorn's workers, nginx's workers, daphne's children.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from tests.procs import Proc, ProcessExited, http_get, wait_until


class ProcessSet:
    """Every process of a run; :meth:`stop_all` runs on success, error and Ctrl-C."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def start(self, name: str, argv: Sequence[str], **kwargs: Any) -> Proc:
        return self.adopt(Proc(name, list(argv), **kwargs))

    def adopt(self, proc: Proc) -> Proc:
        """A process started elsewhere (tests.procs.RedisServer), stopped with the others."""
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        # Reverse order: proxies before the servers behind them.
        while self.procs:
            self.procs.pop().stop(timeout=10)


def _tails(procs: Sequence[Proc]) -> str:
    return "\n".join(f"--- {p.name}\n{p.log()[-2000:]}" for p in procs)


def wait_http(procs: Sequence[Proc], port: int, path: str, *, expect: bytes, timeout: float = 60.0) -> None:
    """Poll until ``GET path`` answers 200 with ``expect`` in the body; fail early if a process died."""

    def answered() -> bool:
        for proc in procs:
            proc.check_alive()
        response = http_get(("127.0.0.1", port), path, timeout=5)
        return response.status == 200 and expect in response.body

    try:
        wait_until(answered, timeout, f"{expect!r} from 127.0.0.1:{port}{path}", interval=0.2)
    except ProcessExited:
        raise
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_tails(procs)}") from None


def wait_unix(path: str, proc: Proc, timeout: float = 60.0) -> None:
    """Poll until something accepts connections on the unix socket ``path``; fail early if ``proc`` died."""

    def listening() -> bool:
        proc.check_alive()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
        return True

    wait_until(listening, timeout, f"{proc.name} to listen on {path}", interval=0.1)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the group (where a load's CPU went)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ... utime(14) stime(15).
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def cpu_snapshot(procs: Sequence[Proc]) -> dict[str, float]:
    return {p.name: group_cpu_seconds(p.popen.pid) for p in procs}


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used per process group over ``seconds`` (1.0 = one core busy)."""
    return {name: round((after[name] - before[name]) / seconds, 3) for name in before if name in after}


def group_pss_bytes(pgid: int) -> int:
    """Proportional resident memory (PSS) of every live process in the group: a stack's servers with
    their workers, pages shared after fork counted once over all of them (an RSS sum counts them per worker)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry}/smaps_rollup") as f:
                pss = next(line for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
        total += int(pss.split()[1]) * 1024
    return total


def memory(procs: Sequence[Proc]) -> dict[str, int]:
    """PSS per process group of a stack, bytes."""
    return {p.name: group_pss_bytes(p.popen.pid) for p in procs}
