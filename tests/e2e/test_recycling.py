"""MAX_REQUESTS recycles workers and no request fails (issue 16).

Each server that counts requests runs the argv and environment its backend builds from a plan with
MAX_REQUESTS = 5 and a jitter of 2 (hypercorn's through its config module), with two workers; 24 requests,
one after another (0.15 s apart), each on a new connection, must all answer 200, from more worker pids than the two the
server started with. The WSGI side of split serving (gunicorn gthread) the same. A few seconds per server.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit.plan import build_plan
from deploykit.plan.model import RECYCLING_SERVERS
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from tests.procs import REPO, STARTUP_TIMEOUT, Proc, free_port, http_get, short_tmpdir, wait_until

pytestmark = [pytest.mark.e2e]

MAX_REQUESTS, JITTER, REQUESTS = 5, 2, 24
#: Seconds between two requests: more than uvicorn's 0.1 s tick.
PACE = 0.15
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://h:6379"]}}}


def serve(argv: list[str], environment: dict[str, str], port: int, workdir: Path) -> dict[str, Any]:
    """Run ``argv`` (the backend's, with this interpreter), send REQUESTS one by one; what came back."""
    env = {
        **environment,
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    proc = Proc("server", [sys.executable, *argv[1:]], log_dir=workdir, env=env)
    address = ("127.0.0.1", port)
    headers = {"Host": "example.com"}
    statuses: list[str] = []
    pids: list[int] = []
    try:

        def ready() -> bool:
            proc.check_alive()
            return http_get(address, "/whoami/", headers, timeout=5).status == 200

        wait_until(ready, STARTUP_TIMEOUT, f"{argv[2]} on {port}", interval=0.2)
        for _ in range(REQUESTS):
            # uvicorn (and gunicorn's uvicorn worker) look at the count once per 0.1 s tick of their main
            # loop: back to back, a worker would answer all 40 before its first look.
            time.sleep(PACE)
            try:
                response = http_get(address, "/whoami/", headers, timeout=30)
                statuses.append(str(response.status))
                if response.status == 200:
                    pids.append(response.json()["pid"])
            except OSError as exc:
                statuses.append(type(exc).__name__)
        log = proc.log()
    finally:
        proc.stop(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"statuses": statuses, "pids": pids, "log": log}


def check(result: dict[str, Any], name: str) -> None:
    statuses, pids = result["statuses"], result["pids"]
    failures = [s for s in statuses if s != "200"]
    print(f"\n{name}: {len(statuses)} requests, {len(failures)} failed, {len(set(pids))} worker pids")
    assert failures == [], f"{failures}\n{result['log'][-3000:]}"
    # Two workers at the start, each replaced after 5 to 7 requests: 24 need at least one more.
    assert len(set(pids)) >= 3, f"{len(set(pids))} pids in {REQUESTS} requests: no worker was recycled"


def plan_for(**values: Any) -> Any:
    dk = {"NAME": "example", "VIRTUALENV": sys.prefix, "WORKERS": 2, "MAX_REQUESTS": MAX_REQUESTS}
    dk.update(MAX_REQUESTS_JITTER=JITTER, **values)
    with override_settings(DEPLOYKIT=dk, CHANNEL_LAYERS=REDIS, WSGI_APPLICATION="testproject.wsgi.application"):
        return build_plan()


@pytest.mark.parametrize("server", RECYCLING_SERVERS)
def test_workers_are_recycled_and_no_request_fails(server: str) -> None:
    port = free_port()
    backend = get_backend(plan_for(SERVER=server, BIND=f"127.0.0.1:{port}"))
    workdir = short_tmpdir(f"recycle-{server[:4]}")
    check(serve(backend.argv(), backend.environment(), port, workdir), server)


def test_the_wsgi_side_is_recycled_too() -> None:
    port = free_port()
    plan = plan_for(SERVER="daphne", WORKERS=1, WSGI_SERVER="gunicorn", WSGI_WORKERS=2, WSGI_BIND=f"127.0.0.1:{port}")
    backend = get_wsgi_backend(plan)
    check(serve(backend.argv(), backend.environment(), port, short_tmpdir("recycle-wsgi")), "gunicorn (WSGI)")
