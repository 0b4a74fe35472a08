"""Socket activation holds connections through a restart (issue 16), on a real-shaped project.

For every server that takes an inherited socket, the envsettings project's unit files are rendered by
``deployconfig systemd --fd 3`` and ``deployconfig systemd-socket --fd 3``, and the service's EXACT
``ExecStart=`` argv runs with its ``Environment=`` (plus what the env file would hold) and in its
``WorkingDirectory=``, under ``systemd-socket-activate`` listening on the socket unit's ``ListenStream=``.
systemd-socket-activate hands the socket over as systemd does (fd 3, ``LISTEN_FDS``, ``LISTEN_PID``) but
execs its command once, so ``respawner.py`` stands between them and does systemd's part of a restart: it
keeps the listening socket open, as PID 1 does, while it stops the server (SIGTERM, wait, KillMode=mixed) and
starts the same argv again (its docstring says exactly what it does and does not do). While that restart runs,
HTTP requests and WebSocket handshakes keep arriving, each on a new connection: none may find the socket
missing, and none sent after the old server had stopped may fail (what the old server had accepted when it
got SIGTERM is its own shutdown's: counted, see the assertions). As much load again goes through nginx, from
the same plan's site file, as users reach the server: there every request and handshake succeeds.

The baseline is the same restart of the unit deploykit writes without ``--fd`` (the server binds its own
socket), under the same respawner: its failures are counted in the same report line.

The socket's owner, group and mode cannot be set by systemd-socket-activate: the unit's ``SocketGroup=``,
``SocketMode=`` and ``DirectoryMode=`` are applied to it by hand as systemd applies them, and the proxy's user
must connect while a stranger must not. About 15-25 s per server.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploykit.plan.model import INHERITED_SOCKET_SERVERS, INHERITED_UNIX_SOCKET_SERVERS, SYSTEMD_LISTEN_FD
from tests.conftest import require_tool
from tests.e2e.test_projects import listen_on
from tests.parsers import systemd_environment, systemd_exec, systemd_unit
from tests.procs import (
    PROJECTS,
    PYTHON,
    STARTUP_TIMEOUT,
    Address,
    Nginx,
    Proc,
    RedisServer,
    free_port,
    http_get,
    project_env,
    project_manage,
    settings_variant,
    short_tmpdir,
    wait_until,
)

pytestmark = [pytest.mark.e2e]

RESPAWNER = Path(__file__).with_name("respawner.py")
#: systemd's default PATH for services; the env file's variables (what envsettings reads).
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: A request may wait this long in the queue (a restart on 2 busy cores takes a few seconds).
REQUEST_TIMEOUT = 40.0
#: One new HTTP connection every HTTP_EVERY seconds, a WebSocket handshake every WS_EVERY.
HTTP_EVERY, WS_EVERY = 0.05, 0.2
PROXY_USER, STRANGER_UID = "www-data", 54321
SETTINGS = 'DEPLOYKIT = {"GRACEFUL_TIMEOUT": 3}'
#: A connection that found no socket: what socket activation removes.
REFUSED = ("ConnectionRefusedError", "FileNotFoundError")
#: A client's close frame, code 1000, masked (RFC 6455 5.3) with an all-zero mask.
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"


@pytest.fixture(scope="module")
def project() -> Iterator[tuple[Path, dict[str, str]]]:
    """envsettings (settings from the environment, Redis channel layer) copied into a temp dir, with Redis."""
    workdir = short_tmpdir("sockact")
    redis = RedisServer(workdir)
    redis.start()
    target = workdir / "envsettings"
    shutil.copytree(PROJECTS / "envsettings", target, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    # The project's production settings with a short graceful timeout, so that a restart fits the suite's
    # time (hypercorn waits out its graceful timeout while the chat consumers are connected).
    settings_variant(target / "envsite", "settings_sa", "envsite.settings.production", SETTINGS)
    # What /etc/NAME/env holds for this project (EnvironmentFile=): its settings read these.
    env_file = {
        "SECRET_KEY": "e2e-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": redis.url,
        "DJANGO_SETTINGS_MODULE": "envsite.settings_sa",
    }
    try:
        yield target, env_file
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Attempt:
    kind: str
    sent: float
    seconds: float
    ok: bool
    detail: str


@dataclass
class Load:
    """New connections at a steady rate from a thread pool, each bounded by REQUEST_TIMEOUT."""

    address: Address
    attempts: list[Attempt] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def http(self) -> None:
        sent = time.monotonic()
        try:
            response = http_get(self.address, "/whoami/", timeout=REQUEST_TIMEOUT)
            ok, detail = response.status == 200, str(response.status)
        except Exception as exc:  # noqa: BLE001 - every failure is counted, with its kind
            ok, detail = False, type(exc).__name__
        self.attempts.append(Attempt("http", sent, time.monotonic() - sent, ok, detail))

    def websocket(self) -> None:
        sent = time.monotonic()
        try:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX)
            else:
                sock = socket.socket(socket.AF_INET)
            with sock:
                sock.settimeout(REQUEST_TIMEOUT)
                sock.connect(self.address)
                sock.sendall(
                    b"GET /ws/chat/lobby/ HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                )
                status = sock.recv(64).split(b"\r\n")[0].decode()
                if status.startswith("HTTP/1.1 101"):
                    sock.sendall(CLOSE_FRAME)  # a client that leaves politely (1000)
            ok, detail = status.startswith("HTTP/1.1 101"), status
        except Exception as exc:  # noqa: BLE001
            ok, detail = False, type(exc).__name__
        self.attempts.append(Attempt("websocket", sent, time.monotonic() - sent, ok, detail))

    def run(self, pool: ThreadPoolExecutor) -> None:
        next_http = next_ws = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_http:
                pool.submit(self.http)
                next_http += HTTP_EVERY
            if now >= next_ws:
                pool.submit(self.websocket)
                next_ws += WS_EVERY
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()


def units(project_dir: Path, env: dict[str, str], args: list[str]) -> dict[str, dict[str, list[str]]]:
    """The unit files deployconfig writes for ``args``: directive -> values, per unit."""
    found: dict[str, dict[str, list[str]]] = {}
    targets = ["systemd", "systemd-socket"] if "--fd" in args else ["systemd"]
    for target in targets:
        done = project_manage(project_dir, env, "deployconfig", target, *args)
        assert done.returncode == 0, done.stderr
        directives: dict[str, list[str]] = {}
        for _section, key, value in systemd_unit(done.stdout):
            directives.setdefault(key, []).append(value)
        found[target] = directives
    return found


def service_env(unit: dict[str, list[str]], env_file: dict[str, str]) -> dict[str, str]:
    env = {"PATH": SERVICE_PATH, **env_file}
    for raw in unit.get("Environment", []):
        env.update(systemd_environment(raw))
    return env


@dataclass
class Restart:
    """What one restart under load did."""

    ok: int
    failed: int
    #: Failures that found no socket (REFUSED), and failures sent after the old server had stopped.
    refused: int
    after_stop: int
    longest: float
    during: int
    restart_seconds: float
    stop_seconds: float
    failures: list[str]

    def line(self) -> str:
        return (
            f"{self.ok} ok, {self.failed} failed ({', '.join(sorted(set(self.failures))) or '-'}; "
            f"{self.refused} found no socket), {self.during} sent during the restart, longest wait "
            f"{self.longest:.2f}s, restart {self.restart_seconds:.2f}s (stop {self.stop_seconds:.2f}s)"
        )


def starts(proc: Proc) -> int:
    return sum(line.startswith("started ") for line in proc.log().splitlines())


def listen_backlog(address: Address) -> int:
    """The listen queue the kernel holds for ``address``: ss's Send-Q of a listening socket."""
    ss = require_tool("ss")
    unix = isinstance(address, str)
    out = subprocess.run([ss, "-xlnH" if unix else "-tlnH"], capture_output=True, text=True, timeout=10).stdout
    wanted = address if unix else f"{address[0]}:{address[1]}"
    for line in out.splitlines():
        fields = line.split()
        if wanted in fields:
            state = fields.index("LISTEN")
            return int(fields[state + 2])
    raise AssertionError(f"no listening socket {wanted} in ss's output:\n{out}")


def summary(attempts: list[Attempt], began: float, restart_seconds: float, stop_seconds: float) -> Restart:
    failed = [a for a in attempts if not a.ok]
    return Restart(
        ok=len(attempts) - len(failed),
        failed=len(failed),
        refused=sum(a.detail in REFUSED for a in failed),
        after_stop=sum(a.sent > began + stop_seconds for a in failed),
        longest=max(a.seconds for a in attempts if a.ok),
        during=sum(began <= a.sent <= began + restart_seconds for a in attempts),
        restart_seconds=restart_seconds,
        stop_seconds=stop_seconds,
        failures=[f"{a.kind} {a.detail}" for a in failed],
    )


def restart_under_load(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    address: Address,
    log_dir: Path,
    *,
    proxy: Address | None = None,
    backlog: int | None = None,
) -> tuple[Restart, Restart | None]:
    """One restart under load straight on ``address``, and (``proxy``) as much again through nginx at the same time.

    ``backlog``: the listen queue the socket must keep before and after the restart (a server that inherits
    the socket calls listen() on it again with its own backlog).
    """
    proc = Proc(f"service-{len(list(log_dir.glob('service-*')))}", argv, log_dir=log_dir, env=env, cwd=cwd)
    loads = [Load(address)] + ([] if proxy is None else [Load(proxy)])
    pool = ThreadPoolExecutor(max_workers=96 * len(loads))
    senders = [threading.Thread(target=load.run, args=(pool,)) for load in loads]
    try:

        def ready() -> bool:
            proc.check_alive()
            return http_get(address, "/whoami/", timeout=5).status == 200

        wait_until(ready, STARTUP_TIMEOUT, f"{argv[-1]} at {address}", interval=0.2)
        if backlog is not None:
            assert listen_backlog(address) == backlog, "the server's listen() changed the socket unit's Backlog="
        if proxy is not None:
            wait_until(lambda: http_get(proxy, "/whoami/", timeout=5).status == 200, 10, "the server through nginx")
        for sender in senders:
            sender.start()
        time.sleep(0.5)
        # A server that crashed at its first start was started again already: count from here.
        started_before = starts(proc)
        began = time.monotonic()
        proc.popen.send_signal(signal.SIGHUP)
        # Back when the respawner has started the server again and a request answers.
        wait_until(lambda: proc.check_alive() or starts(proc) > started_before, 30, "the start after the SIGHUP")
        wait_until(ready, STARTUP_TIMEOUT, "the restarted server", interval=0.2)
        restart_seconds = time.monotonic() - began
        if backlog is not None:
            assert listen_backlog(address) == backlog, "the restarted server's listen() changed Backlog="
        time.sleep(0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proc.log()[-3000:]}") from None
    finally:
        for load in loads:
            load.stop()
        for sender in senders:
            if sender.is_alive():
                sender.join(5)
        pool.shutdown(wait=True, cancel_futures=False)
        proc.stop(timeout=30)
    # "stopped PID SECONDS": how long after the SIGHUP the old server was gone.
    [stop_seconds] = [float(line.split()[2]) for line in proc.log().splitlines() if line.startswith("stopped ")][-1:]
    direct, *through = (summary(load.attempts, began, restart_seconds, stop_seconds) for load in loads)
    return direct, (through[0] if through else None)


@pytest.mark.parametrize("server", INHERITED_SOCKET_SERVERS)
def test_requests_wait_through_a_restart(server: str, project: tuple[Path, dict[str, str]]) -> None:
    activate = require_tool("systemd-socket-activate")
    project_dir, env_file = project
    env = project_env(project_dir, **env_file)
    run = short_tmpdir(f"sa-{server[:4]}")
    try:
        if server in INHERITED_UNIX_SOCKET_SERVERS:
            # The socket unit's folder: root's, DirectoryMode=0755 (below).
            (run / "run").mkdir()
            address: Address = str(run / "run" / "app.sock")
            bind = ["--uds", address]
        else:
            address = ("127.0.0.1", free_port())
            bind = ["--bind", f"127.0.0.1:{address[1]}"]
        common = ["--server", server, "--workers", "1" if server == "daphne" else "2", *bind]

        activated = units(project_dir, env, [*common, "--fd", str(SYSTEMD_LISTEN_FD)])
        service, sock = activated["systemd"], activated["systemd-socket"]
        [exec_start] = service["ExecStart"]
        argv = systemd_exec(exec_start)
        [listen] = sock["ListenStream"]
        # What the socket unit asks for, as the kernel caps it; systemd-socket-activate listens with SOMAXCONN.
        backlog = min(int(sock["Backlog"][0]), int(Path("/proc/sys/net/core/somaxconn").read_text()))
        assert listen == (address if isinstance(address, str) else f"{address[0]}:{address[1]}")
        # gunicorn takes fd 3 from LISTEN_FDS (its --bind names the address: deploykit.servers.gunicorn).
        assert any(f in exec_start for f in (f"--fd {SYSTEMD_LISTEN_FD}", f"fd://{SYSTEMD_LISTEN_FD}", "--bind unix:"))
        if isinstance(address, str):
            (run / "run").chmod(int(sock["DirectoryMode"][0], 8))
        [stop_timeout] = service["TimeoutStopSec"]
        wrapped = [activate, "-l", listen, PYTHON, str(RESPAWNER), stop_timeout, "--", *argv]
        # systemd-socket-activate passes its children only -E variables (and LISTEN_*), like a unit's environment.
        environment = service_env(service, env_file)
        wrapped[1:1] = [f"-E{name}={value}" for name, value in environment.items()]
        [cwd] = service["WorkingDirectory"]
        # nginx in front, from the same plan: its site, moved to a loopback port.
        site = project_manage(project_dir, env, "deployconfig", "nginx", *common, "--fd", str(SYSTEMD_LISTEN_FD))
        assert site.returncode == 0, site.stderr
        nginx_port = free_port()
        (run / "site.conf").write_text(listen_on(site.stdout, nginx_port))
        nginx = Nginx(run / "nginx", run / "site.conf", nginx_port)
        nginx.start()
        try:
            with_activation, proxied = restart_under_load(
                wrapped, {}, Path(cwd), address, run, proxy=("127.0.0.1", nginx_port), backlog=backlog
            )
        finally:
            nginx.stop()
        assert proxied is not None

        plain = units(project_dir, env, common)["systemd"]
        [plain_exec] = plain["ExecStart"]
        baseline, _ = restart_under_load(
            [PYTHON, str(RESPAWNER), stop_timeout, "--", *systemd_exec(plain_exec)],
            service_env(plain, env_file),
            Path(cwd),
            address,
            run,
        )
    finally:
        shutil.rmtree(run, ignore_errors=True)
    print(
        f"\n{server} socket-activated, through nginx: {proxied.line()}"
        f"\n{server} socket-activated, on the socket: {with_activation.line()}"
        f"\n{server} binds its own socket: {baseline.line()}"
    )
    assert with_activation.during > 0, "no request was sent while the server restarted"
    # Today's unit: while the server is down there is no socket, and requests fail.
    # (On a quiet machine the old server's exit and the new one's bind can fall between two requests: then
    # what fails is what the stopping server held, as the counts say.)
    assert baseline.refused + baseline.failed > 0, f"the baseline restart lost nothing: {baseline.line()}"
    # Socket activation: no request finds the socket missing, and none sent after the old server had stopped
    # fails. What can still fail is what the old server had accepted when SIGTERM came, each server's own
    # shutdown, which the socket cannot change: uvicorn answers a handshake in progress with 500 and resets a
    # connection it had just accepted, daphne closes the connections it holds (django/daphne#177); the
    # report line counts them (daphne: 1 on a quiet machine, 11 of 123 at load average 12), and nginx tries
    # those requests again (below).
    assert with_activation.refused == 0, with_activation.line()
    assert with_activation.after_stop == 0, with_activation.line()
    # Through nginx, as users reach it, a request the stopping server closed unanswered is tried again on the
    # upstream's next entry (the same socket), where it waits for the next server (tests/e2e/test_upstream_retry.py
    # proves the retry itself). Most runs lose nothing there; what can still fail is the servers' own shutdown
    # again: uvicorn (gunicorn's worker is uvicorn) answers a handshake its application has not accepted yet
    # with a 500, which nginx passes on, and one run in about seven lost one request to daphne as a 502 (both
    # tries failed). So: nothing found the socket missing, and far fewer failed than with today's unit.
    assert proxied.during > 0, "no request went through nginx while the server restarted"
    assert proxied.refused == 0, proxied.line()
    assert proxied.failed < baseline.failed, (proxied.line(), baseline.line())


def test_the_proxy_group_reaches_the_socket_units_socket(project: tuple[Path, dict[str, str]]) -> None:
    """SocketUser=/SocketGroup=/SocketMode=/DirectoryMode= as the socket unit says: the proxy connects, others not."""
    activate = require_tool("systemd-socket-activate")
    require_tool("setpriv")
    project_dir, env_file = project
    env = project_env(project_dir, **env_file)
    run = short_tmpdir("sa-group")
    try:
        (run / "run").mkdir()
        path = run / "run" / "app.sock"
        found = units(project_dir, env, ["--server", "uvicorn", "--workers", "2", "--uds", str(path), "--fd", "3"])
        service, sock = found["systemd"], found["systemd-socket"]
        (run / "run").chmod(int(sock["DirectoryMode"][0], 8))
        run.chmod(0o755)
        argv = systemd_exec(service["ExecStart"][0])
        environment = service_env(service, env_file)
        wrapped = [activate, *(f"-E{k}={v}" for k, v in environment.items()), "-l", str(path), *argv]
        proc = Proc("activated", wrapped, log_dir=run, env={}, cwd=Path(service["WorkingDirectory"][0]))
        try:
            wait_until(path.exists, 10, "the socket")
            # What systemd does at once on creating it; SocketUser= names the app's user, which this machine
            # lacks: the owner stays root (clients connect through the group).
            shutil.chown(path, "root", sock["SocketGroup"][0])
            path.chmod(int(sock["SocketMode"][0], 8))
            proxy = connect_as(PROXY_USER, sock["SocketGroup"][0], path)
            stranger = connect_as(str(STRANGER_UID), str(STRANGER_UID), path)
        finally:
            proc.stop(timeout=30)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    print(f"\nproxy ({PROXY_USER}): {proxy!r}; stranger: {stranger!r}")
    assert proxy.startswith("HTTP/1.1 200"), proxy
    assert stranger == "PermissionError"


CLIENT = """\
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(40)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__)
else:
    s.sendall(b"GET /whoami/ HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n")
    print(s.recv(64).split(b"\\r\\n")[0].decode())
"""


def connect_as(user: str, group: str, path: Path) -> str:
    argv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "--", "/usr/bin/python3"]
    done = subprocess.run([*argv, "-c", CLIENT, str(path)], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()
