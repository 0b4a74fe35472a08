"""Variant 3: real supervisord runs the generated fcgi-program section (numprocs 2); nginx connects
through the socket supervisor owns and hands to both uvicorn processes as fd 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import GRACEFUL_TIMEOUT, Stack, render, running_stack
from tests.e2e.ws import clients_on_distinct_pids, reconnect
from tests.procs import Proc, answers, http_get, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-supervisor")]

# uvicorn: daphne cannot adopt a unix socket as fd 0 (twisted adoptStreamPort takes only
# AF_INET/AF_INET6: "Listen failure: UNIX"), so daphne under fcgi-program needs a TCP socket.
PLAN = [
    "--process-manager", "supervisor", "--server", "uvicorn", "--workers", "1", "--processes", "2",
    "--uds", "{workdir}/app.sock",
]  # fmt: skip


@dataclass
class Supervised:
    stack: Stack
    proc: Proc
    conf: Path
    program: str

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [require_tool("supervisorctl"), "-c", str(self.conf), *args], capture_output=True, text=True, timeout=60
        )
        return done.stdout + done.stderr

    def pids(self) -> dict[str, int]:
        """process name -> pid, of the RUNNING processes."""
        return {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+)", self.ctl("status"), re.M)}


@pytest.fixture(scope="module")
def supervised(static_root: Path) -> Iterator[Supervised]:
    supervisord = require_tool("supervisord")
    with running_stack(static_root, "sup", [], PLAN) as stack:
        w = stack.workdir
        program = render(stack.env, "supervisor", w / "program.conf", *(a.format(workdir=w) for a in PLAN))
        assert "numprocs=2" in program and f"socket=unix://{w}/app.sock" in program
        # The wrapper a packaged supervisord.conf would be; the program is the generated file.
        conf = w / "supervisord.conf"
        conf.write_text(
            f"[unix_http_server]\nfile={w}/supervisor.sock\n"
            f"[supervisord]\nnodaemon=true\nlogfile={w}/supervisord.log\npidfile={w}/supervisord.pid\nchildlogdir={w}\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
            f"[supervisorctl]\nserverurl=unix://{w}/supervisor.sock\n"
            f"[include]\nfiles = {w}/program.conf\n"
        )
        # supervisord's children inherit its environment (the secrets an env file would hold).
        proc = Proc("supervisord", [supervisord, "-c", str(conf)], log_dir=w, env=stack.env)
        sup = Supervised(stack, proc, conf, "testproject")
        try:
            try:
                wait_until(lambda: len(sup.pids()) == 2 and answers(stack.address, "/-/ready"), 40, "2 RUNNING + ready")
            except AssertionError as exc:
                logs = "\n".join(f"== {f.name}\n{f.read_text()[-2000:]}" for f in sorted(w.glob("*.log")))
                raise AssertionError(f"{exc}\n{sup.ctl('status')}\n{logs}") from None
            yield sup
        finally:
            children = list(sup.pids().values()) if proc.alive() else []
            proc.stop(timeout=GRACEFUL_TIMEOUT + 30)
            # Supervised processes have their own process groups: none may outlive the test.
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_through_the_supervisor_socket(supervised: Supervised) -> None:
    stack = supervised.stack
    assert f"server unix:{stack.workdir}/app.sock max_fails=0;" in stack.site_conf
    assert http_get(stack.address, "/").status == 200
    assert http_get(stack.address, "/-/ready").status == 200
    print(f"supervisorctl status: {supervised.pids()}")


def test_both_supervised_processes_serve_one_room(supervised: Supervised) -> None:
    pids = set(supervised.pids().values())

    async def run() -> list[int]:
        a, b = await clients_on_distinct_pids(supervised.stack.address, "/ws/chat/supervised/")
        try:
            await a.send("via fd 0")
            await asyncio.gather(a.expect(["via fd 0"]), b.expect(["via fd 0"]))
            return [a.pid, b.pid]
        finally:
            await a.close()
            await b.close()

    seen = asyncio.run(run())
    print(f"supervised pids {sorted(pids)}; clients on {seen}")
    assert set(seen) == pids


def test_supervisorctl_restart_is_graceful(supervised: Supervised) -> None:
    """supervisorctl restart: TERM, exit before stopwaitsecs (no SIGKILL), clients closed, back and rejoined."""
    stack = supervised.stack
    room = "/ws/chat/supervised-restart/"

    async def run() -> dict[str, object]:
        a, b = await clients_on_distinct_pids(stack.address, room)
        before = sorted({a.pid, b.pid})
        closes = asyncio.gather(a.wait_closed(GRACEFUL_TIMEOUT + 10), b.wait_closed(GRACEFUL_TIMEOUT + 10))
        start = asyncio.get_running_loop().time()
        output = await asyncio.to_thread(supervised.ctl, "restart", f"{supervised.program}:*")
        seconds = asyncio.get_running_loop().time() - start
        close_a, close_b = await closes
        (a, _), (b, _) = await reconnect(stack.address, room), await reconnect(stack.address, room)
        try:
            await a.send("after supervisor restart")
            await asyncio.gather(a.expect(["after supervisor restart"]), b.expect(["after supervisor restart"]))
        finally:
            await a.close()
            await b.close()
        return {
            "restart_seconds": round(seconds, 2),
            "output": output.strip().splitlines(),
            "close_codes": [c.rcvd.code if c.rcvd else None for c in (close_a, close_b)],
            "pids_before": before,
            "pids_after": sorted(supervised.pids().values()),
        }

    seen = asyncio.run(run())
    log = (stack.workdir / "supervisord.log").read_text()
    print(f"supervisorctl restart: {seen}")
    assert "SIGKILL" not in log
    assert not set(seen["pids_before"]) & set(seen["pids_after"])  # type: ignore[call-overload]
    assert None not in seen["close_codes"]  # type: ignore[operator]
