"""Fixtures of the end-to-end suite: one stack per variant (module), torn down even when a test fails.

A stack is real Redis (loopback port, no persistence), the server(s) started
with ``manage.py runasgi`` (the plan's own argv) and real nginx running the
file ``manage.py deployconfig nginx`` rendered. Stacks are module-scoped and
every module carries an ``xdist_group`` mark, so under ``--dist loadgroup`` a
variant is built once, on one worker.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.procs import (
    Address,
    Nginx,
    Proc,
    RedisServer,
    free_port,
    manage,
    short_tmpdir,
    stack_env,
    start_server,
    wait_ready,
)

#: Short, so that 10 restarts fit the suite's time budget; the servers' own
#: shutdown must finish well inside it (no SIGKILL).
GRACEFUL_TIMEOUT = 5
#: In STATIC_ROOT only: Django (DEBUG off) never serves it, so a 200 proves nginx did.
STATIC_MARKER = "e2e-served-by-nginx.txt"
STATIC_MARKER_TEXT = "static file from STATIC_ROOT\n"


@pytest.fixture(scope="session")
def static_root() -> Iterator[Path]:
    """collectstatic once per worker, into a directory every stack's nginx serves."""
    root = short_tmpdir("static")
    try:
        env = stack_env(root, "redis://127.0.0.1:1/0", root / "static")
        manage(env, "collectstatic", "--noinput", "-v0")
        (root / "static" / STATIC_MARKER).write_text(STATIC_MARKER_TEXT)
        yield root / "static"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Server:
    """One server process of a stack: how to start it again, and where it answers."""

    name: str
    args: list[str]
    address: Address
    proc: Proc | None = None


@dataclass
class Stack:
    workdir: Path
    env: dict[str, str]
    redis: RedisServer
    servers: list[Server]
    nginx: Nginx | None = None
    site_conf: str = ""
    startup_seconds: list[float] = field(default_factory=list)

    @property
    def address(self) -> Address:
        """Where clients connect: nginx."""
        assert self.nginx is not None
        return ("127.0.0.1", self.nginx.port)

    def start_server(self, server: Server) -> float:
        server.proc = start_server(server.name, self.env, server.args, self.workdir)
        seconds = wait_ready(server.proc, server.address)
        self.startup_seconds.append(seconds)
        return seconds

    def stop(self) -> None:
        for server in self.servers:
            if server.proc is not None:
                server.proc.stop(timeout=GRACEFUL_TIMEOUT + 10)
        if self.nginx is not None:
            self.nginx.stop()
        self.redis.stop()


def render(env: dict[str, str], target: str, path: Path, *args: str) -> str:
    """``manage.py deployconfig TARGET --check -o PATH``: the real validator passes, the file is written; its text."""
    manage(env, "deployconfig", target, "--check", "-o", str(path), *args)
    return path.read_text()


@contextlib.contextmanager
def running_stack(
    static_root: Path,
    name: str,
    servers: list[tuple[str, list[str], str | int]],
    render_args: list[str],
    **env: str,
) -> Iterator[Stack]:
    """Start Redis, the servers (``(name, runasgi args, socket file name or TCP port)``) and nginx.

    Stops everything on the way out, whatever happened.
    """
    workdir = short_tmpdir(name)
    redis = RedisServer(workdir)
    port = free_port()
    stack_environment = stack_env(
        workdir,
        redis.url,
        static_root,
        DEPLOYKIT_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT),
        DEPLOYKIT_LISTEN_ADDRESS="127.0.0.1",
        DEPLOYKIT_HTTP_PORT=str(port),
        **env,
    )
    stack = Stack(
        workdir,
        stack_environment,
        redis,
        [
            Server(
                n,
                [arg.format(workdir=workdir) for arg in a],
                str(workdir / w) if isinstance(w, str) else ("127.0.0.1", w),
            )
            for n, a, w in servers
        ],
    )
    try:
        redis.start()
        for server in stack.servers:
            stack.start_server(server)
        site = workdir / "site.conf"
        stack.site_conf = render(stack.env, "nginx", site, *(arg.format(workdir=workdir) for arg in render_args))
        stack.nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
        stack.nginx.start()
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
