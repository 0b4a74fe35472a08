"""Draining WebSockets (issue 16) on the real-shaped projects of tests/projects/, per server.

envsettings (settings from the environment, its own asgi.py, a Redis channel layer, the tutorial's consumer
with its ``chat_ROOM`` group) under uvicorn and granian, and the Channels tutorial after runasgi's W009 hint
under hypercorn. The project is copied into a temp dir and given ``DRAIN_TIMEOUT`` and ``HEALTH_PATH`` by a
settings module of its own that imports its production settings, as a user adds them. Its own ``manage.py
runasgi`` starts the server (2 workers on a unix socket), its own ``deployconfig nginx`` writes the site real
nginx serves, with real Redis; then tests/e2e/drains.py runs ``python -m deploykit.drain start --wait`` with
the server's environment and asserts what tests/e2e/test_drain.py asserts on testproject: every socket closed
with 1012 spread over the window, new handshakes refused (403), readiness 503, the group empty afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import drains
from tests.e2e.test_projects import ENVSETTINGS, TUTORIAL_HINTED, Project, add_deploykit, copy_project
from tests.procs import (
    Nginx,
    Outcome,
    RedisServer,
    free_port,
    project_manage,
    short_tmpdir,
    start_or_refuse,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-drain-projects")]

#: (project, server): granian is another process model (Rust workers), hypercorn another event loop's drain.
STACKS = [(ENVSETTINGS, "uvicorn"), (ENVSETTINGS, "granian"), (TUTORIAL_HINTED, "hypercorn")]
DRAIN_TIMEOUT = 4
#: As tests/e2e/test_drain.py: enough that a tenth of them in 100 ms is a herd, not chance or a busy machine
#: (uniform over 4 s: 5 per 100 ms; with 100, a stalled event loop put 14 of them in one 100 ms in a full run).
CLIENTS = 200
ROOM = "drain"


@dataclass
class ProjectServer:
    project: Project
    workdir: Path
    project_dir: Path
    env: dict[str, str]
    redis: RedisServer
    args: list[str]
    socket: str
    nginx: Nginx


@pytest.fixture(params=STACKS, ids=lambda stack: f"{stack[0].name}-{stack[1]}")
def running(request: pytest.FixtureRequest) -> Iterator[ProjectServer]:
    project, server = request.param
    workdir = short_tmpdir(f"drainp-{server[:3]}")
    redis = RedisServer(workdir)
    outcome: Outcome | None = None
    nginx: Nginx | None = None
    try:
        redis.start()
        project_dir, env = copy_project(project, workdir, redis)
        port = free_port()
        settings = {
            "DRAIN_TIMEOUT": DRAIN_TIMEOUT,
            # Short: nothing is open by the teardown, and hypercorn waits it out all the same.
            "GRACEFUL_TIMEOUT": 2,
            "HEALTH_PATH": "/-/ready",
            # This machine's places (a host's are /run/NAME and port 80).
            "RUNTIME_DIRECTORY": str(workdir),
            "LISTEN_ADDRESS": "127.0.0.1",
            "HTTP_PORT": port,
        }
        add_deploykit(project_dir, env, project, settings)
        socket = str(workdir / "app.sock")
        args = ["--server", server, "--workers", "2", "--uds", socket]
        outcome = start_or_refuse(server, project_dir, env, args, socket, workdir, path="/whoami/", timeout=60)
        assert not outcome.refused, f"runasgi {' '.join(args)} exited {outcome.returncode}:\n{outcome.output}"
        done = project_manage(
            project_dir, env, "deployconfig", "nginx", "--check", "-o", str(workdir / "site.conf"), *args
        )
        assert done.returncode == 0, done.stderr
        nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
        nginx.start()
        yield ProjectServer(project, workdir, project_dir, env, redis, args, socket, nginx)
    finally:
        if outcome is not None:
            outcome.proc.stop(timeout=15)
        if nginx is not None:
            nginx.stop()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(120)
def test_drain_on_the_project_closes_every_websocket_with_1012_spread_over_the_window(running: ProjectServer) -> None:
    printed = project_manage(running.project_dir, running.env, "runasgi", "--print-command", *running.args)
    assert printed.returncode == 0, printed.stderr
    site = drains.DrainSite(
        label=f"{running.project.name}/{running.args[1]}",
        address=("127.0.0.1", running.nginx.port),
        sockets=[running.socket],
        env=running.env,
        server_env=drains.server_environment(printed.stdout.strip()),
        cwd=running.project_dir,
        redis=running.redis,
        # The tutorial's consumer: "chat_%s" % room_name.
        group=f"chat_{ROOM}",
        room=ROOM,
        clients=CLIENTS,
        window=DRAIN_TIMEOUT,
    )
    drains.drain_and_assert(site)
