"""Issue 17 end to end, on tests/projects/celerysite (cookiecutter-django's Celery shape):

- a Celery task enqueued by a view (Redis broker) is processed by the worker that ``deployconfig
  supervisor-processes`` wrote, run by real supervisord next to the web server ``deployconfig supervisor``
  wrote; ``supervisorctl stop`` on the worker is Celery's warm shutdown (the running task finishes);
- the release, started twice at the same moment with the argv ``runprocess release --print-command``
  prints (as two pods' init containers or two hosts' release units would), runs the migrations once: the
  second waits for the database's lock, then finds nothing to apply.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.procs import (
    PROJECTS,
    PYTHON,
    Proc,
    RedisServer,
    free_port,
    http_get,
    project_env,
    project_manage,
    running_redis,
    short_tmpdir,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-processes")]

CELERYSITE = PROJECTS / "celerysite"


def site_env(workdir: Path, **extra: str) -> dict[str, str]:
    return project_env(
        CELERYSITE,
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="e2e-" + "k" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_PATH=str(workdir / "db.sqlite3"),
        STATIC_ROOT=str(workdir / "static"),
        DEPLOYKIT_USER=__import__("pwd").getpwuid(os.getuid()).pw_name,
        DEPLOYKIT_VIRTUALENV=str(Path(PYTHON).parent.parent),
        DEPLOYKIT_WORKING_DIRECTORY=str(CELERYSITE),
        **extra,
    )


def manage(env: dict[str, str], *args: str) -> str:
    done = project_manage(CELERYSITE, env, *args)
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def printed_command(env: dict[str, str], name: str) -> tuple[dict[str, str], list[str]]:
    """``runprocess NAME --print-command``: (its environment, its argv), as the units contain them."""
    words = shlex.split(manage(env, "runprocess", name, "--print-command"))
    assignments = [w for w in words if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
    return dict(w.split("=", 1) for w in assignments), words[len(assignments) :]


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = short_tmpdir("proc")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def postgres_tool(name: str) -> str:
    """A PostgreSQL server program: on PATH, or where Debian's postgresql package puts it (not on PATH)."""
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    return str(found) if found else require_tool(name)


@contextlib.contextmanager
def running_postgres(workdir: Path) -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL on a loopback port, run as the postgres user (it refuses root); its settings."""
    import pwd

    initdb, postgres = postgres_tool("initdb"), postgres_tool("postgres")
    account = pwd.getpwnam("postgres")
    data = workdir / "pgdata"
    data.mkdir()
    os.chown(data, account.pw_uid, account.pw_gid)
    os.chown(workdir, account.pw_uid, -1)
    as_postgres = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
    done = subprocess.run(
        [*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    port = free_port()
    argv = [*as_postgres, postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(workdir)]
    proc = Proc("postgres", argv, log_dir=workdir)

    def ready() -> bool:
        proc.check_alive()
        with contextlib.suppress(OSError), __import__("socket").create_connection(("127.0.0.1", port), 1):
            return "ready to accept connections" in proc.log()
        return False

    try:
        wait_until(ready, 60, "postgres")
        yield {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(port),
            "POSTGRES_DB": "postgres",
            "POSTGRES_USER": "postgres",
        }
    finally:
        proc.stop(signal.SIGINT, timeout=20)  # fast shutdown


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_release_runs_once_when_two_start_together(database: str, workdir: Path) -> None:
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(running_postgres(workdir)) if database == "postgresql" else {}
        release_once(workdir, db, "PostgreSQL advisory lock" if db else "flock")


def release_once(workdir: Path, db: dict[str, str], lock: str) -> None:
    record = workdir / "record"
    env = site_env(workdir, RELEASE_RECORD=str(record), RELEASE_RECORD_SLEEP="2", **db)
    extra, argv = printed_command(env, "release")
    assert argv[-4:] == ["--step", "migrate --noinput", "--step", "collectstatic --noinput"]
    start = time.monotonic()
    procs = [Proc(f"release-{i}", argv, log_dir=workdir, env={**env, **extra}, cwd=CELERYSITE) for i in (1, 2)]
    try:
        for proc in procs:
            wait_until(lambda p=proc: not p.alive(), 90, f"{proc.name} to finish")
    finally:
        for proc in procs:
            proc.stop(timeout=5)
    logs = [p.log() for p in procs]
    print(f"two releases in {time.monotonic() - start:.1f}s:\n" + "\n----\n".join(logs))
    assert [p.popen.returncode for p in procs] == [0, 0], logs
    # The migration's RunPython ran in one process only, and exactly once.
    assert len(record.read_text().split()) == 1
    applied = [log for log in logs if "Applying orders.0001_initial" in log]
    waited = [log for log in logs if "No migrations to apply" in log]
    assert len(applied) == len(waited) == 1
    # The second took the lock only after the first had finished (the migration sleeps 2 s under it).
    held = re.search(r"holding (.*) after ([0-9.]+)s", waited[0])
    assert held is not None and held.group(1).startswith(lock)
    assert float(held.group(2)) >= 2


@dataclass
class Supervised:
    proc: Proc
    conf: Path
    port: int

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [require_tool("supervisorctl"), "-c", str(self.conf), *args], capture_output=True, text=True, timeout=120
        )
        return done.stdout + done.stderr

    def pids(self) -> dict[str, int]:
        return {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+)", self.ctl("status"), re.M)}


@contextlib.contextmanager
def supervised_site(workdir: Path, redis: RedisServer) -> Iterator[Supervised]:
    supervisord = require_tool("supervisord")
    port = free_port()
    env = site_env(workdir, REDIS_URL=redis.url, DEPLOYKIT_PROCESS_MANAGER="supervisor", CELERYSITE_NO_BEAT="1")
    # The release first, as INSTALL.md orders it under supervisor.
    extra, argv = printed_command(env, "release")
    done = subprocess.run(argv, env={**env, **extra}, cwd=CELERYSITE, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    common = ["--server", "uvicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    manage(env, "deployconfig", "supervisor", "--check", "-o", str(workdir / "web.conf"), *common)
    manage(env, "deployconfig", "supervisor-processes", "--check", "-o", str(workdir / "processes.conf"), *common)
    programs = (workdir / "processes.conf").read_text()
    assert "[program:celerysite-celeryworker]" in programs and "stopsignal=TERM" in programs
    conf = workdir / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={workdir}/supervisor.sock\n"
        f"[supervisord]\nnodaemon=true\nlogfile={workdir}/supervisord.log\npidfile={workdir}/supervisord.pid\n"
        f"childlogdir={workdir}\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{workdir}/supervisor.sock\n"
        f"[include]\nfiles = {workdir}/web.conf {workdir}/processes.conf\n"
    )
    # The generated files log to /var/log/supervisor: keep this run's logs in its own folder.
    for name in ("web.conf", "processes.conf"):
        path = workdir / name
        path.write_text(path.read_text().replace("/var/log/supervisor/", f"{workdir}/"))
    # supervisord's children inherit its environment (the secrets an env file would hold).
    proc = Proc("supervisord", [supervisord, "-c", str(conf)], log_dir=workdir, env=env)
    sup = Supervised(proc, conf, port)
    try:
        try:
            wait_until(lambda: len(sup.pids()) == 2 and http_get(("127.0.0.1", port), "/orders/1/").status, 60, "up")
        except AssertionError as exc:
            logs = "\n".join(f"== {f.name}\n{f.read_text()[-2000:]}" for f in sorted(workdir.glob("*.log")))
            raise AssertionError(f"{exc}\n{sup.ctl('status')}\n{logs}") from None
        yield sup
    finally:
        children = list(sup.pids().values()) if proc.alive() else []
        proc.stop(timeout=60)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def order(port: int, pk: int) -> dict[str, object]:
    return http_get(("127.0.0.1", port), f"/orders/{pk}/").json()  # type: ignore[no-any-return]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_view_enqueues_a_task_the_supervised_worker_runs(workdir: Path) -> None:
    with running_redis(workdir) as redis, supervised_site(workdir, redis) as sup:
        worker_main = sup.pids()["celerysite-celeryworker"]
        pk = http_get(("127.0.0.1", sup.port), "/orders/new/").json()["id"]
        done = wait_until(lambda: (o := order(sup.port, pk))["status"] == "done" and o, 60, "the task to run")
        print(f"order {pk}: {done}; supervised worker {worker_main}")
        # A pool process of the supervised worker ran it.
        assert parent_of(int(done["worker_pid"])) == worker_main

        # Warm shutdown: `supervisorctl stop` sends TERM; the running task finishes before the worker exits.
        pk = http_get(("127.0.0.1", sup.port), "/orders/new/?seconds=3").json()["id"]
        wait_until(lambda: order(sup.port, pk)["status"] == "working", 60, "the slow task to start")
        start = time.monotonic()
        output = sup.ctl("stop", "celerysite-celeryworker")
        seconds = time.monotonic() - start
        print(f"supervisorctl stop: {output.strip()} in {seconds:.1f}s; order {order(sup.port, pk)}")
        assert "stopped" in output
        assert order(sup.port, pk)["status"] == "done"
        assert "SIGKILL" not in (workdir / "supervisord.log").read_text()
