"""Real processes for the end-to-end stack: start, wait (always bounded), stop (always).

Every process starts in its own session (its own process group), logs to a
file in the stack's directory, and is stopped by :meth:`Proc.stop`: the signal
first, SIGKILL to the whole group when the timeout passes. An ``atexit`` hook
kills whatever a crashed or interrupted run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import itertools
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploykit.nginxprefix import NginxPrefix
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
#: Seconds a process may take to come up (Django import on a busy 2-core machine).
STARTUP_TIMEOUT = 40.0

_LIVE: dict[int, Proc] = {}


def short_tmpdir(prefix: str) -> Path:
    """A directory under /tmp: pytest's tmp paths can exceed the 107 bytes of a unix socket path."""
    path = Path(tempfile.mkdtemp(prefix=f"dk-{prefix}-", dir="/tmp"))
    # As systemd's RuntimeDirectoryMode=0750: runasgi refuses a socket that other
    # users can reach while it trusts X-Forwarded-* from every peer on it.
    path.chmod(0o750)
    return path


#: Ports handed out per call: servers with N processes on TCP, the split's WSGI side and a second
#: slot listen on the ports after the one in the plan, so those must be free and nobody else's too.
PORT_STRIDE = 16
#: The lowest port the allocator uses; the ports below are left to the machine's own services.
PORT_FLOOR = 12000


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_cursor() -> Iterator[int]:
    """Ports below the kernel's ephemeral range, in a block of their own per xdist worker.

    A port from ``bind(port 0)`` comes from the ephemeral range, and between closing the probe and the
    server's own bind, any outgoing connection (the other worker opens hundreds) may take it as its
    source port: "Address already in use" (CI, 2026-11-30). Below that range the kernel hands out
    nothing by itself, and the per-worker blocks keep the workers off each other's ports.
    """
    ceiling = _ephemeral_floor()
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % workers
    block = (ceiling - PORT_FLOOR) // workers // PORT_STRIDE * PORT_STRIDE
    if block < PORT_STRIDE:  # a machine with an unusual ephemeral range: the kernel's choice after all
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                yield int(s.getsockname()[1])
    first = PORT_FLOOR + worker * block
    # Start anywhere in the block: the last run's sockets may linger in TIME_WAIT at its start.
    offset = random.randrange(block // PORT_STRIDE) * PORT_STRIDE
    for step in itertools.count():
        yield first + (offset + step * PORT_STRIDE) % block


_PORTS = _port_cursor()


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port whose next ``PORT_STRIDE - 1`` ports are free and handed to no one else."""
    for _ in range(1000):
        port = next(_PORTS)
        if port + PORT_STRIDE > 65536:
            continue
        if all(_free(p) for p in range(port, port + PORT_STRIDE)):
            return port
    raise AssertionError(f"no {PORT_STRIDE} consecutive free ports on 127.0.0.1")


class ProcessExited(AssertionError):
    """A process that was waited for has exited: waiting longer is pointless."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.

    An exception from ``predicate`` is polled again, except :class:`ProcessExited`, which fails at once.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except ProcessExited:
            raise
        except Exception as exc:  # noqa: BLE001 - polled again until the deadline
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})")
        time.sleep(interval)


@dataclass(frozen=True)
class Stopped:
    returncode: int
    seconds: float
    killed: bool


class Proc:
    """One started process (and its process group)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
        stdin: int = subprocess.DEVNULL,
    ) -> None:
        """``stdin``: a file descriptor for the process's fd 0, e.g. the listening socket supervisor would pass."""
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        self.pid = self.popen.pid
        _LIVE[self.pid] = self

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        """Raise :class:`ProcessExited`, with the end of the log, if the process has exited."""
        if not self.alive():
            raise ProcessExited(f"{self.name} exited ({self.popen.returncode}):\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> Stopped:
        """Send ``sig`` to the process; SIGKILL its group if it outlives ``timeout``."""
        start = time.monotonic()
        killed = False
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self.kill_group()
                self.popen.wait(10)
        seconds = time.monotonic() - start
        # Workers the leader left behind are ours too.
        self.kill_group()
        _LIVE.pop(self.pid, None)
        return Stopped(self.popen.returncode, seconds, killed)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE.values()):
        proc.kill_group()


# -- HTTP over TCP or a unix socket -------------------------------------------------------------

#: A TCP (host, port) or a unix socket path.
Address = tuple[str, int] | str


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(
    address: Address,
    path: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    *,
    source: str | None = None,
) -> Response:
    """GET ``path``; ``source`` is the local address to connect from (TCP only: any of 127/8 on Linux loopback)."""
    conn: http.client.HTTPConnection
    if isinstance(address, str):
        assert source is None, "a unix socket has no source address"
        conn = _UnixHTTPConnection(address, timeout)
    else:
        source_address = None if source is None else (source, 0)
        conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout, source_address=source_address)
    try:
        request_headers = {"Host": "127.0.0.1", **(headers or {})}
        conn.request("GET", path, headers=request_headers)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def answers(address: Address, path: str, status: int = 200) -> bool:
    try:
        return http_get(address, path, timeout=5).status == status
    except OSError:
        return False


# -- The pieces of the stack --------------------------------------------------------------------


class RedisServer:
    """redis-server on a free loopback port, no persistence: a restart loses everything, like a crash."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_tool("redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.workdir)]
        self.proc = Proc("redis", argv, log_dir=self.workdir)
        wait_until(self.ping, 10, f"redis on port {self.port}")

    def stop(self) -> Stopped | None:
        if self.proc is None:
            return None
        stopped = self.proc.stop(timeout=10)
        self.proc = None
        return stopped


@contextlib.contextmanager
def running_redis(workdir: Path) -> Iterator[RedisServer]:
    """A RedisServer in ``workdir``, started for the block and stopped after it."""
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Nginx:
    """nginx on a temp prefix (deploykit.nginxprefix) around the generated site file.

    The wrapper holds only what a packaged nginx.conf holds (pid, logs, temp
    paths, mime types); everything about the site comes from deployconfig.
    """

    def __init__(self, prefix: Path, site_conf: Path, port: int) -> None:
        self.prefix = NginxPrefix(prefix, require_tool("nginx"))
        self.port = port
        self.prefix.write(
            [site_conf],
            worker_processes=1,
            error_log_level="info",
            # Timings and the upstream that answered, for the tests' reports.
            http=["log_format timed '$msec \"$request\" $status $request_time $upstream_addr $upstream_status'"],
            access_log_format="timed",
        )
        self.proc: Proc | None = None

    def start(self) -> None:
        test = subprocess.run(self.prefix.test_argv(), capture_output=True, text=True, timeout=30)
        assert test.returncode == 0, f"nginx -t failed:\n{test.stderr}"
        self.proc = Proc("nginx", self.prefix.serve_argv(), log_dir=self.prefix.root)
        wait_until(
            lambda: answers(("127.0.0.1", self.port), "/nonexistent-probe", 404) or self._listening(), 10, "nginx"
        )

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGQUIT, timeout=10)
            self.proc = None

    def access_log(self) -> str:
        path = self.prefix.access_log
        return path.read_text(errors="replace") if path.exists() else ""

    def error_log(self) -> str:
        path = self.prefix.error_log
        return path.read_text(errors="replace") if path.exists() else ""


def stack_env(workdir: Path, redis_url: str, static_root: Path, **extra: str) -> dict[str, str]:
    """The environment of every command of a stack: production settings, loopback everything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYKIT_", "PYTEST_", "FORCE_SCRIPT"))}
    env.update(
        DJANGO_SETTINGS_MODULE="testproject.production",
        DJANGO_SECRET_KEY="e2e-" + "k" * 50,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        REDIS_URL=redis_url,
        STATIC_ROOT=str(static_root),
        DEPLOYKIT_SOCKET=str(workdir / "app.sock"),
        DEPLOYKIT_TLS="off",
        DEPLOYKIT_USER=pwd.getpwuid(os.getuid()).pw_name,
        DEPLOYKIT_RUNTIME_DIRECTORY=str(workdir),
        DEMO_DATABASE=str(workdir / "db.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: Mapping[str, str], *args: str, timeout: float = 120, cwd: Path = REPO) -> str:
    """Run a management command (``cwd``'s manage.py: testproject's unless told) to completion; its stdout."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def start_server(name: str, env: Mapping[str, str], args: list[str], log_dir: Path) -> Proc:
    """``manage.py runasgi`` (it execs the server: the pid is the server's)."""
    return Proc(name, [PYTHON, "manage.py", "runasgi", *args], log_dir=log_dir, env=env)


def wait_ready(proc: Proc, address: Address, path: str = "/-/ready", timeout: float = STARTUP_TIMEOUT) -> float:
    """Seconds until ``path`` answers 200 at ``address``; fails early if the process died."""
    start = time.monotonic()

    def ready() -> bool:
        proc.check_alive()
        return answers(address, path)

    wait_until(ready, timeout, f"{proc.name} at {address}{path}", interval=0.1)
    return time.monotonic() - start


@contextlib.contextmanager
def cleanup_dir(path: Path) -> Iterator[Path]:
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- The real-shaped projects of tests/projects/ (issue 12) ----------------------------------------

#: Small Django + Channels projects written the way real ones are (tests/projects/README.md).
PROJECTS = REPO / "tests" / "projects"


def project_env(project_dir: Path, *extra_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a command run in a project: its directory (and ``extra_path``) on PYTHONPATH.

    Nothing of the suite's own settings leaks in (DJANGO_SETTINGS_MODULE, DEPLOYKIT_*): the
    project's manage.py chooses its settings unless ``extra`` names them.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEPLOYKIT_", "PYTEST_", "DJANGO_", "FORCE_SCRIPT", "PYTHONPATH"))
    }
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (project_dir, *extra_path))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def project_manage(
    project_dir: Path, env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` in ``project_dir``, run to completion whatever its exit code."""
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=project_dir, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def settings_variant(directory: Path, name: str, base: str, body: str) -> Path:
    """Write settings module ``name`` (``from BASE import *`` + ``body``) in ``directory``; put it on PYTHONPATH."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(f"from {base} import *  # noqa: F403\n{body}\n")
    return directory


@dataclass
class Outcome:
    """What ``runasgi`` did: ``refused`` (exited on its own, with its output) or started (``proc`` is serving)."""

    proc: Proc
    refused: bool
    returncode: int | None
    output: str


def start_or_refuse(
    name: str,
    project_dir: Path,
    env: Mapping[str, str],
    args: list[str],
    address: Address,
    log_dir: Path,
    path: str = "/",
    timeout: float = STARTUP_TIMEOUT,
) -> Outcome:
    """Start ``manage.py runasgi ARGS``: wait until ``path`` answers at ``address`` (any status) or the process exits.

    A process that neither answers nor exits within ``timeout`` fails the test (its log in the message).
    The caller stops ``outcome.proc`` when it started.
    """
    proc = Proc(name, [PYTHON, "manage.py", "runasgi", *args], log_dir=log_dir, env=env, cwd=project_dir)

    def settled() -> bool:
        if not proc.alive():
            return True
        try:
            http_get(address, path, timeout=2)
            return True
        except OSError:
            return False

    try:
        wait_until(settled, timeout, f"{name} to answer at {address}{path} or exit", interval=0.1)
    except AssertionError as exc:
        proc.stop(timeout=5)
        raise AssertionError(f"{exc}\n{name} log:\n{proc.log()[-3000:]}") from None
    if not proc.alive():
        proc.popen.wait(5)
        return Outcome(proc, True, proc.popen.returncode, proc.log())
    return Outcome(proc, False, None, proc.log())
