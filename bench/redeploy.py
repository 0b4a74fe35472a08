"""Redeploys under load (issue 16): two slots and a switch against today's plain restart.

``bench/run redeploy`` (or ``python -m bench.redeploy``) starts real Redis, supervisord running the two
slots' programs that ``deployconfig supervisor`` writes, and the proxy (nginx; ``--proxy apache`` or
``caddy``, bench.slotproxies) on the site and upstream file that ``deployconfig PROXY`` writes; then, for
each procedure, a load (``bench.slotload``: HTTP requests and WebSocket clients that number every message)
runs through N consecutive redeploys:

- **slots**: ``manage.py redeploy`` (start the idle slot, wait for its readiness, switch the proxy's upstream
  file, reload the proxy, drain the old slot, stop it);
- **restart**: ``supervisorctl restart`` of the live slot, as one instance is restarted today.

It prints and writes (bench/results/redeploy.md, .json) a table of both: failed HTTP requests, WebSocket
closes and reconnects, lost messages, and how the closes spread over time. The e2e test
(tests/e2e/test_redeploy.py) runs the same thing, shortened.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.redeploy_report import summarize, table
from bench.slotproxies import PROXIES, ProxyFront, front
from tests.procs import PYTHON, REPO, Proc, RedisServer, answers, free_port, manage, stack_env, wait_until

RESULTS = Path(__file__).resolve().parent / "results"
SLOTS = ("blue", "green")
#: The plan's proxy group (the slots' socket folders belong to it), the last word ``manage.py shell`` prints.
SHOW_PROXY_GROUP = "from deploykit.plan import build_plan; print(build_plan().process_manager.proxy_group)"


def log(message: str) -> None:
    print(f"[redeploy {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SlotSettings:
    """What a stack's slots are told, whichever project runs in them."""

    drain_timeout: int
    graceful_timeout: int = 10
    #: The plan's default (one per core) when None: the e2e tests run one, to start faster.
    workers: int | None = None


@dataclass(frozen=True)
class SlotSite:
    """The project in a stack's slots: the folder of its manage.py, its plan's NAME, its commands' environment."""

    directory: Path
    name: str
    env: dict[str, str]


def demo_site(stack: SlotStack, settings: SlotSettings) -> SlotSite:
    """testproject, its DEPLOYKIT from DEPLOYKIT_* variables (testproject/production.py)."""
    env = stack_env(
        stack.workdir,
        stack.redis.url,
        stack.workdir / "static",
        DEPLOYKIT_SLOTS=",".join(SLOTS),
        DEPLOYKIT_UPSTREAM_FILE=str(stack.upstream),
        DEPLOYKIT_PROCESS_MANAGER="supervisor",
        DEPLOYKIT_PROXY=stack.proxy,
        DEPLOYKIT_GRACEFUL_TIMEOUT=str(settings.graceful_timeout),
        DEPLOYKIT_DRAIN_TIMEOUT=str(settings.drain_timeout),
        DEPLOYKIT_LISTEN_ADDRESS="127.0.0.1",
        DEPLOYKIT_HTTP_PORT=str(stack.port),
        **({"DEPLOYKIT_WORKERS": str(settings.workers)} if settings.workers else {}),
    )
    return SlotSite(REPO, "testproject", env)


class SlotStack:
    """Redis, supervisord with both slots' programs, the proxy (``proxy``: nginx, apache or caddy) on the
    generated site and upstream file.

    ``site`` gives the project (testproject unless told): it must put the slots' sockets at
    ``slot_socket()`` (SOCKET ``WORKDIR/app.sock``, RUNTIME_DIRECTORY ``WORKDIR``), the upstream file at
    ``upstream``, the proxy on 127.0.0.1:``port`` (its plan's PROXY ``proxy``), and use this stack's Redis.
    """

    def __init__(
        self,
        workdir: Path,
        settings: SlotSettings,
        site: Callable[[SlotStack, SlotSettings], SlotSite] = demo_site,
        proxy: str = "nginx",
    ) -> None:
        self.workdir = workdir
        self.proxy = proxy
        self.redis = RedisServer(workdir)
        self.port = free_port()
        self.site_dir = workdir / "site"
        self.upstream = self.site_dir / "upstream.conf"
        self.site = site(self, settings)
        self.env = self.site.env
        self.supervisor_conf = workdir / "supervisord.conf"
        self.procs: list[Proc] = []
        self.front: ProxyFront | None = None

    def manage(self, *args: str, timeout: float = 120) -> str:
        """The project's own ``manage.py ARGS``."""
        return manage(self.env, *args, timeout=timeout, cwd=self.site.directory)

    def ctl(self, *args: str) -> str:
        argv = [shutil.which("supervisorctl") or "supervisorctl", "-c", str(self.supervisor_conf), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr

    def slot_socket(self, slot: str) -> str:
        return f"{self.workdir}-{slot}/app-{slot}.sock"

    def start(self) -> None:
        self.redis.start()
        w = self.workdir
        proxy_group = self.manage("shell", "-c", SHOW_PROXY_GROUP).split()[-1]
        for slot in SLOTS:
            # supervisor creates the socket, not its folder (INSTALL.md's `install -d -g PROXY_GROUP -m 0750`).
            folder = Path(f"{w}-{slot}")
            folder.mkdir(mode=0o750, exist_ok=True)
            os.chown(folder, -1, grp.getgrnam(proxy_group).gr_gid)
        self.manage("deployconfig", "supervisor", "--check", "-o", str(w / "program.conf"))
        self.supervisor_conf.write_text(
            f"[unix_http_server]\nfile={w}/supervisor.sock\n"
            f"[supervisord]\nnodaemon=true\nlogfile={w}/supervisord.log\npidfile={w}/supervisord.pid\n"
            f"childlogdir={w}\nminfds=8192\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
            f"[supervisorctl]\nserverurl=unix://{w}/supervisor.sock\n"
            f"[include]\nfiles = {w}/program.conf\n"
        )
        supervisord = shutil.which("supervisord") or "supervisord"
        self.procs.append(Proc("supervisord", [supervisord, "-c", str(self.supervisor_conf)], log_dir=w, env=self.env))
        # Both slots autostart (so a reboot brings the live one back, whichever it is): the idle one is stopped,
        # as after a redeploy.
        wait_until(lambda: answers(self.slot_socket(SLOTS[0]), "/-/ready"), 60, "slot blue ready", interval=0.2)
        wait_until(lambda: "RUNNING" in self.ctl("status", f"{self.site.name}-{SLOTS[1]}:*"), 60, "slot green running")
        self.ctl("stop", f"{self.site.name}-{SLOTS[1]}:*")
        self.manage("deployconfig", self.proxy, "--check", "-o", str(self.site_dir))
        self.front = front(self.proxy, self.site_dir, w / self.proxy, proxy_group=proxy_group)
        test = subprocess.run(self.front.test, capture_output=True, text=True, timeout=30)
        assert test.returncode == 0, test.stdout + test.stderr
        self.procs.append(Proc(self.proxy, self.front.serve, log_dir=w, env=self.front.env))
        wait_until(lambda: answers(("127.0.0.1", self.port), "/whoami/"), 30, f"{self.proxy} -> slot blue")

    @property
    def proxy_proc(self) -> Proc:
        return next(p for p in self.procs if p.name == self.proxy)

    def live(self) -> str:
        return self.upstream.read_text().split("\n", 1)[0].rsplit(" ", 1)[1]

    def redeploy(self) -> dict[str, Any]:
        """``manage.py redeploy``, with this stack's supervisorctl and proxy."""
        assert self.front is not None
        started = time.time()
        out = self.manage(
            "redeploy",
            "--manager-command",
            f"supervisorctl -c {self.supervisor_conf}",
            "--proxy-test",
            shlex.join(self.front.test),
            "--proxy-reload",
            shlex.join(self.front.reload),
            timeout=300,
        )
        last = out.splitlines()[-1]
        timings = {k: float(v) for k, v in re.findall(r"(\w+_s) ([\d.]+)", last)}
        drain_start = float(re.findall(r"drain began at ([\d.]+)", last)[0])
        # What the proxy's reload left on the old slot's sockets for the drain (before, after).
        kept = re.findall(r"(\d+) connection\(s\) open before the proxy's reload, (\d+) after", out)
        return {
            "started": started,
            "drain_start": drain_start,
            "seconds": time.time() - started,
            "timings": timings,
            "reload_kept": [int(n) for n in kept[0]],
        }

    def restart(self) -> dict[str, Any]:
        """Today's procedure: restart the one running instance in place."""
        started = time.time()
        self.ctl("restart", f"{self.site.name}-{self.live()}:*")
        return {"started": started, "drain_start": started, "seconds": time.time() - started, "timings": {}}

    def stop(self) -> None:
        while self.procs:
            self.procs.pop().stop(timeout=30)
        self.redis.stop()


@contextlib.contextmanager
def slot_stack(
    settings: SlotSettings,
    site: Callable[[SlotStack, SlotSettings], SlotSite] = demo_site,
    *,
    keep: bool = False,
    proxy: str = "nginx",
) -> Iterator[SlotStack]:
    workdir = Path(__import__("tempfile").mkdtemp(prefix="dk-slots-", dir="/tmp"))
    workdir.chmod(0o750)
    stack = SlotStack(workdir, settings, site, proxy)
    try:
        stack.manage("collectstatic", "--noinput", "-v0")
        stack.start()
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            if keep:
                log(f"kept {workdir} and its -{SLOTS[0]}, -{SLOTS[1]} siblings")
            else:
                for slot in SLOTS:
                    shutil.rmtree(f"{workdir}-{slot}", ignore_errors=True)
                shutil.rmtree(workdir, ignore_errors=True)


def run_procedure(
    stack: SlotStack, procedure: str, *, redeploys: int, clients: int, http_connections: int, interval: float
) -> dict[str, Any]:
    """Load through ``redeploys`` consecutive redeploys by ``procedure`` ("slots" or "restart"); the figures."""
    w = stack.workdir
    stop_file, ready_file = w / f"stop-{procedure}", w / f"ready-{procedure}"
    argv = [PYTHON, "-m", "bench.slotload", "--port", str(stack.port), "--clients", str(clients)]
    argv += ["--interval", str(interval), "--http-connections", str(http_connections)]
    argv += ["--stop-file", str(stop_file), "--ready-file", str(ready_file), "--max-seconds", "1800"]
    load = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    try:
        wait_until(lambda: ready_file.exists() or load.poll() is not None, 120, f"{clients} clients connected")
        assert load.poll() is None, load.stderr.read() if load.stderr else ""
        status = Path(f"{ready_file}.status")
        for number in range(redeploys):
            event = stack.redeploy() if procedure == "slots" else stack.restart()
            events.append(event)
            # Every client back before the next redeploy (bounded): each redeploy meets all of them.
            wait_until(lambda: status.read_text() == str(clients), 120, f"{clients} clients reconnected", interval=0.2)
            log(f"{procedure} {number + 1}/{redeploys}: live slot {stack.live()}, {event['seconds']:.1f}s")
            time.sleep(1)
        stop_file.touch()
        out, err = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
            load.communicate()
    line = next((x for x in out.splitlines() if x.startswith("SLOTJSON ")), None)
    if line is None:
        raise RuntimeError(f"bench.slotload printed no figures:\n{err[-3000:]}")
    return summarize(procedure, json.loads(line[len("SLOTJSON ") :]), events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redeploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--redeploys", type=int, default=10)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--http-connections", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's messages")
    parser.add_argument("--drain-timeout", type=int, default=10)
    parser.add_argument("--only", default="slots,restart", help="procedures to run: slots, restart")
    parser.add_argument("--proxy", default="nginx", choices=PROXIES, help="the proxy in front of the slots")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, configs)")
    args = parser.parse_args(argv)
    results = []
    meta = {"command": " ".join(["python -m bench.redeploy", *(argv if argv is not None else sys.argv[1:])])}
    meta["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    meta["load_before"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    for procedure in args.only.split(","):
        # A fresh stack each: the second procedure must not inherit the first's state.
        with slot_stack(SlotSettings(args.drain_timeout), keep=args.keep, proxy=args.proxy) as stack:
            log(f"{procedure}: {args.clients} clients, {args.redeploys} redeploys, drain window {args.drain_timeout}s")
            results.append(
                run_procedure(
                    stack,
                    procedure,
                    redeploys=args.redeploys,
                    clients=args.clients,
                    http_connections=args.http_connections,
                    interval=args.interval,
                )
            )
    meta["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = f"Run {meta['started']}: `{meta['command']}`, load average {meta['load_before']} before, "
    text += f"{meta['load_after']} after.\n\n" + table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "redeploy.md").write_text(text)
    (args.out / "redeploy.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    sys.stdout.write(text)
    log(f"wrote {args.out}/redeploy.md, redeploy.json")
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
