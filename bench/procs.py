"""Processes the benchmark starts: every one in its own session, every one stopped at the end.

Each server runs in a new session (``start_new_session``), so stopping it
signals the whole group: uvicorn's workers, nginx's workers, daphne's children.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")


class StartFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """One started process (group), its log file, and how to stop it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log: Path,
        cwd: Path = REPO,
        stdin: int | None = subprocess.DEVNULL,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self._log_file = open(log, "ab")  # closed in stop()
        self.popen = subprocess.Popen(
            self.argv,
            env=dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after ``timeout``."""
        pgid = self.popen.pid
        if self.alive():
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Workers may outlive their parent: kill whatever is left in the group.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log_file.close()


class ProcessSet:
    """Every process of a run; :meth:`stop_all` runs on success, error and Ctrl-C."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def start(self, name: str, argv: Sequence[str], **kwargs: object) -> Proc:
        proc = Proc(name, argv, **kwargs)  # type: ignore[arg-type]
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        # Reverse order: proxies before the servers behind them.
        while self.procs:
            self.procs.pop().stop()


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http(procs: Sequence[Proc], port: int, path: str, *, expect: bytes, timeout: float = 60.0) -> None:
    """Poll until ``GET path`` answers 200 with ``expect`` in the body; fail early if a process died."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise StartFailed(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        try:
            status, body = http_get("127.0.0.1", port, path)
            if status == 200 and expect in body:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in procs)
    raise StartFailed(f"no answer on 127.0.0.1:{port}{path} after {timeout:.0f} s ({last})\n{tails}")


def wait_unix(path: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartFailed(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise StartFailed(f"{proc.name}: nothing listens on {path} after {timeout:.0f} s\n{proc.log_tail()}")


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
