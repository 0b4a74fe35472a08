"""Issue 17 item 5 end to end: the generated Procfile, run by a real Procfile runner (honcho).

The envsettings project (twelve-factor settings: SECRET_KEY, ALLOWED_HOSTS, REDIS_URL from the
environment, the shape a Heroku app has) is copied to a temp dir with ``PLATFORM = "heroku"``;
``deployconfig procfile --check`` writes its Procfile, ``honcho start release`` migrates, and
``honcho start web`` runs the web line with ``$PORT`` and ``WEB_CONCURRENCY=2`` from the environment,
as the platform would. Asserted: a page answers on $PORT, a chat message crosses the two worker
processes through Redis, the router's forwarded headers are applied and a forged one from any other
peer is not. 127.0.0.2 stands in for the router: on loopback no private-network address can be had, so
the Procfile is written with ``--forwarded-allow-ips 127.0.0.2`` (narrowing the platform's private
networks) while the settings the processes run with set no FORWARDED_ALLOW_IPS: the trust the server
applies is the Procfile's (runasgi's default for a TCP bind would trust 127.0.0.1, the forger here).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

from tests.conftest import require_tool
from tests.e2e.ws import clients_on_distinct_pids
from tests.procs import (
    PROJECTS,
    PYTHON,
    Proc,
    free_port,
    http_get,
    project_env,
    project_manage,
    running_redis,
    settings_variant,
    short_tmpdir,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-paas")]

ROUTER = "127.0.0.2"
PAAS_SETTINGS = """
DEPLOYKIT = {"PLATFORM": "heroku", "SERVER": "uvicorn"}
"""


def test_procfile_under_honcho() -> None:
    honcho = require_tool("honcho")
    workdir = short_tmpdir("paas")
    try:
        project = workdir / "envsettings"
        shutil.copytree(PROJECTS / "envsettings", project, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
        extra = settings_variant(workdir / "extra", "paas_settings", "envsite.settings.production", PAAS_SETTINGS)
        with running_redis(workdir) as redis:
            env = project_env(
                project,
                extra,
                DJANGO_SETTINGS_MODULE="paas_settings",
                SECRET_KEY="paas-e2e-not-secret",
                ALLOWED_HOSTS="127.0.0.1",
                REDIS_URL=redis.url,
                # `python` in the Procfile is the platform's: here the suite's virtualenv.
                PATH=os.pathsep.join([str(Path(PYTHON).parent), os.environ["PATH"]]),
            )
            done = project_manage(
                project, env, "deployconfig", "procfile", "--check", "-o", "Procfile", "--forwarded-allow-ips", ROUTER
            )
            assert done.returncode == 0, done.stderr
            procfile = (project / "Procfile").read_text()
            assert procfile.count("web:") == 1, procfile

            release = subprocess.run(
                [honcho, "start", "release"], cwd=project, env=env, capture_output=True, text=True, timeout=120
            )
            assert release.returncode == 0, release.stdout + release.stderr
            assert "Applying" in release.stdout and (project / "db.sqlite3").exists()

            port = free_port()
            web = Proc(
                "honcho-web",
                [honcho, "start", "--port", str(port), "web"],
                log_dir=workdir,
                env={**env, "WEB_CONCURRENCY": "2"},
                cwd=project,
            )
            try:
                _serve(web, port)
            finally:
                stopped = web.stop(signal.SIGTERM, timeout=20)
            assert not stopped.killed, web.log()[-3000:]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _serve(web: Proc, port: int) -> None:
    address = ("127.0.0.1", port)

    def page() -> bool:
        web.check_alive()
        try:
            return http_get(address, "/", timeout=5).status == 200
        except OSError:
            return False

    wait_until(page, 60, f"the Procfile's web process on $PORT {port}", interval=0.2)
    # The web line's argv, as runasgi logged it: $PORT and WEB_CONCURRENCY expanded by the shell.
    assert f"--port {port} --backlog 4096 --workers 2" in web.log(), web.log()[-3000:]

    async def chat() -> None:
        first, second = await clients_on_distinct_pids(address, "/ws/chat/lobby/", 2)
        try:
            await first.send("across processes")
            assert await second.expect(["across processes"]) == ["across processes"]
        finally:
            await first.close()
            await second.close()

    asyncio.run(chat())

    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    # The router (a trusted peer): its headers say who the client is and that it came over HTTPS.
    routed = http_get(address, "/whoami/", forged, source=ROUTER).json()
    # (envsettings' /whoami/ also names the answering pid: the split e2e needs it.)
    assert (routed["remote_addr"], routed["is_secure"]) == ("203.0.113.9", True)
    # Any other peer that reaches the port: its forged address is ignored. (Its X-Forwarded-Proto is
    # not: the project's own SECURE_PROXY_SSL_HEADER trusts it in Django, whoever sends it; on the
    # platform only the router reaches the port, and it overwrites that header.)
    direct = http_get(address, "/whoami/", forged, source="127.0.0.1").json()
    assert direct["remote_addr"] == "127.0.0.1"


CELERY_SETTINGS = """
DEPLOYKIT["PLATFORM"] = "heroku"
DEPLOYKIT["SERVER"] = "uvicorn"
"""


def test_procfile_background_worker_under_honcho() -> None:
    """celerysite (cookiecutter-django's Celery shape): the Procfile's worker line processes a view's task."""
    honcho = require_tool("honcho")
    workdir = short_tmpdir("paas-celery")
    try:
        project = workdir / "celerysite"
        shutil.copytree(PROJECTS / "celerysite", project, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
        extra = settings_variant(workdir / "extra", "paas_celery", "config.settings.production", CELERY_SETTINGS)
        with running_redis(workdir) as redis:
            env = project_env(
                project,
                extra,
                DJANGO_SETTINGS_MODULE="paas_celery",
                DJANGO_SECRET_KEY="paas-e2e-" + "k" * 50,
                DJANGO_ALLOWED_HOSTS="127.0.0.1",
                DATABASE_PATH=str(workdir / "db.sqlite3"),
                REDIS_URL=redis.url,
                # beat is a process type like the worker; one is enough here.
                CELERYSITE_NO_BEAT="1",
                PATH=os.pathsep.join([str(Path(PYTHON).parent), os.environ["PATH"]]),
            )
            done = project_manage(project, env, "deployconfig", "procfile", "--check", "-o", "Procfile")
            assert done.returncode == 0, done.stderr
            assert sorted(parse_procfile((project / "Procfile").read_text()).processes) == [
                "celeryworker",
                "release",
                "web",
            ]
            release = subprocess.run(
                [honcho, "start", "release"], cwd=project, env=env, capture_output=True, text=True, timeout=120
            )
            assert release.returncode == 0, release.stdout + release.stderr

            port = free_port()
            procs = Proc(
                "honcho-web-worker",
                [honcho, "start", "--port", str(port), "web", "celeryworker"],
                log_dir=workdir,
                env=env,
                cwd=project,
            )
            address = ("127.0.0.1", port)
            try:

                def order(pk: int) -> dict[str, object]:
                    procs.check_alive()
                    result: dict[str, object] = http_get(address, f"/orders/{pk}/", timeout=5).json()
                    return result

                def enqueued() -> int | None:
                    procs.check_alive()
                    try:
                        return int(http_get(address, "/orders/new/", timeout=5).json()["id"])
                    except OSError:
                        return None

                pk = wait_until(enqueued, 60, "the web process to take an order")
                wait_until(lambda: order(pk)["status"] == "done", 60, "the Procfile's worker to run the task")
            finally:
                stopped = procs.stop(signal.SIGTERM, timeout=30)
            assert not stopped.killed, procs.log()[-3000:]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
