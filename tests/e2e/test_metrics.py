"""METRICS_PATH end to end (issue 17 item 7): real servers with 2 workers behind the generated nginx, Redis layer.

uvicorn (2 workers) and granian (2 workers, its own exporter passed through) start with ``manage.py runasgi``
(the plan's argv and environment); nginx runs the file ``deployconfig nginx --check`` wrote. N WebSockets,
M requests and group sends go through nginx; every scrape, whichever worker answers it, reports the
service's numbers, read with prometheus_client's parser. A stranger (127.0.0.2) gets 403.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_tool
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.ws import Client, open_client
from tests.procs import free_port, http_get, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-metrics")]

METRICS = "/-/metrics"
ROOM = "/ws/chat/metrics/"
SOCKETS = 6
REQUESTS = 20
NOT_FOUND = 3
MESSAGES = 3

Families = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture(scope="module", params=["uvicorn", "granian"])
def stack(request: pytest.FixtureRequest, static_root: Path) -> Iterator[Stack]:
    server: str = request.param
    extra = {"DEPLOYKIT_GRANIAN_METRICS_PORT": str(free_port())} if server == "granian" else {}
    flags = ["--server", server, "--workers", "2"]
    with running_stack(
        static_root,
        f"metrics-{server[:4]}",
        [("server", flags, "app.sock")],
        flags,
        DEPLOYKIT_METRICS_PATH=METRICS,
        **extra,
    ) as running:
        yield running


def scrape(stack: Stack, source: str | None = None) -> Families:
    response = http_get(stack.address, METRICS, source=source)
    assert response.status == 200, response.body[:200]
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    parsed: Families = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return parsed


def total(families: Families, name: str, **labels: str) -> float:
    return sum(v for k, v in families.get(name, {}).items() if set(labels.items()) <= set(k))


def open_by_pid(families: Families) -> dict[int, float]:
    return {int(dict(k)["pid"]): v for k, v in families["deploykit_websocket_connections_open"].items() if v}


def test_every_scrape_reports_the_service_not_the_worker(stack: Stack) -> None:
    before = scrape(stack)
    # A channel queue nobody reads: its depth is what the scrape must find in Redis.
    stuck = redis.Redis.from_url(stack.redis.url)
    stuck.zadd("asgispecific.metrics-test!stuck", {f"m{i}": i for i in range(5)})

    async def traffic() -> tuple[list[int], list[Families]]:
        # Exactly SOCKETS connections (uvicorn's workers share the socket: the kernel spreads them).
        clients: list[Client] = [await open_client(stack.address, ROOM) for _ in range(SOCKETS)]
        try:
            for i in range(MESSAGES):
                await clients[i % len(clients)].send(f"hello {i}")
            for client in clients:
                await client.expect([f"hello {i}" for i in range(MESSAGES)])
            for _ in range(REQUESTS):
                assert (await asyncio.to_thread(http_get, stack.address, "/whoami/")).status == 200
            for _ in range(NOT_FOUND):
                assert (await asyncio.to_thread(http_get, stack.address, "/no-such-page/")).status == 404
            # Several scrapes: nginx spreads them over both workers, each must say the same.
            scrapes = [await asyncio.to_thread(scrape, stack) for _ in range(6)]
            return [c.pid for c in clients], scrapes
        finally:
            for client in clients:
                await client.close()

    pids, scrapes = asyncio.run(traffic())
    print(f"sockets on pids {collections.Counter(pids)}")
    for during in scrapes:
        # Both workers, unless every connection went to one (seen once with granian on a busy machine: the
        # idle worker had counted nothing yet); the sockets' pids say which.
        live = total(during, "deploykit_server_processes", state="live")
        assert live == 2 or (live == 1 and len(set(pids)) == 1), (live, collections.Counter(pids))
        assert open_by_pid(during) == dict(collections.Counter(pids))

        def delta(name: str, **labels: str) -> float:
            return total(during, name, **labels) - total(before, name, **labels)  # noqa: B023

        assert delta("deploykit_http_requests_total", method="GET", status="2xx") == REQUESTS
        assert delta("deploykit_http_requests_total", method="GET", status="4xx") == NOT_FOUND
        assert delta("deploykit_websocket_connections_total") == SOCKETS
        assert delta("deploykit_websocket_messages_total", direction="received") == MESSAGES
        # A hello each, then every message to every socket of the room.
        assert delta("deploykit_websocket_messages_total", direction="sent") == SOCKETS * (1 + MESSAGES)
        assert delta("deploykit_channel_layer_group_sends_total") == MESSAGES
        assert total(during, "deploykit_channel_layer_up") == 1
        assert total(during, "deploykit_channel_layer_scan_complete") == 1
        assert total(during, "deploykit_channel_layer_group_members") == SOCKETS
        assert total(during, "deploykit_channel_layer_deepest_queue") == 5
        assert total(during, "deploykit_channel_layer_queued_messages") >= 5
    # The server finishes each closed connection's application shortly after the client's close.
    wait_until(lambda: open_by_pid(scrape(stack)) == {}, 10, "every WebSocket counted closed")


def test_granian_passes_its_own_metrics_through(stack: Stack) -> None:
    if "granian" not in stack.servers[0].args:
        pytest.skip("granian's own exporter: the granian stack")
    seen = scrape(stack)
    assert total(seen, "deploykit_granian_metrics_up") == 1
    # granian names its counters without _total; prometheus_client's parser reads them with it.
    assert seen["granian_workers_spawns_total"] == {(): 2}


def test_promtool_accepts_a_real_scrape(stack: Stack) -> None:
    promtool = require_tool("promtool")
    body = http_get(stack.address, METRICS).body
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    complaints = result.stderr.decode().splitlines()
    print(result.returncode, complaints)
    # Lint only (exit 3), and only about granian's own names (no _total, no HELP), passed through as granian
    # writes them: Prometheus ingests them as they are. deploykit's lines lint clean.
    assert result.returncode == 0 or (result.returncode == 3 and complaints)
    assert all(line.startswith("granian_") for line in complaints)


def test_a_stranger_is_refused(stack: Stack) -> None:
    response = http_get(stack.address, METRICS, source="127.0.0.2")
    page = http_get(stack.address, "/whoami/", source="127.0.0.2")
    assert response.status == 403 and b"deploykit_" not in response.body
    assert page.status == 200


def test_the_channels_tutorial_as_it_is_scraped_by_address(redis_for_tutorial: Any) -> None:
    """A real-shaped project (tests/projects/tutorial: the Channels tutorial's own asgi.py, no deploykit
    routing) under uvicorn with 2 workers behind its generated nginx: Prometheus's way in, by address."""
    from tests.e2e.test_projects import HINTED_SETTINGS, TUTORIAL_HINTED, copy_project, listen_on
    from tests.procs import Nginx, project_manage, settings_variant, short_tmpdir, start_or_refuse

    workdir = short_tmpdir("metrics-tut")
    project_dir, env = copy_project(TUTORIAL_HINTED, workdir, redis_for_tutorial)
    # Its own runtime directory: the counter files of every run in one folder add up (README, "Metrics").
    metrics_settings = HINTED_SETTINGS + (
        f"\nDEPLOYKIT = {{'METRICS_PATH': {METRICS!r}, 'RUNTIME_DIRECTORY': {str(workdir / 'run')!r}}}\n"
    )
    settings_variant(project_dir / "mysite", "settings_metrics", "mysite.settings", metrics_settings)
    env["DJANGO_SETTINGS_MODULE"] = "mysite.settings_metrics"
    args = ["--server", "uvicorn", "--workers", "2", "--uds", str(workdir / "app.sock")]
    outcome = start_or_refuse("uvicorn", project_dir, env, args, str(workdir / "app.sock"), workdir, timeout=40)
    nginx = None
    try:
        assert not outcome.refused, outcome.output[-2000:]
        done = project_manage(project_dir, env, "deployconfig", "nginx", "--check", *args)
        assert done.returncode == 0, done.stderr
        port = free_port()
        (workdir / "site.conf").write_text(listen_on(done.stdout, port))
        nginx = Nginx(workdir / "nginx", workdir / "site.conf", port)
        nginx.start()
        address = ("127.0.0.1", port)

        async def chat() -> list[int]:
            clients = [await open_client(address, "/ws/chat/metrics/") for _ in range(3)]
            try:
                await clients[0].conn.send('{"message": "hi"}')
                for client in clients:
                    await client.expect(["hi"])
                return [c.pid for c in clients]
            finally:
                for client in clients:
                    await client.close()

        pids = asyncio.run(chat())
        # ALLOWED_HOSTS is empty (the tutorial's): the site has no name, 127.0.0.1 is the catch-all's.
        body = http_get(address, METRICS).body.decode()
        seen: Families = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                seen.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        print(f"pids {pids}; " + " ".join(line for line in body.splitlines() if line.startswith("deploykit_w")))
        assert total(seen, "deploykit_websocket_connections_total") == 3
        assert total(seen, "deploykit_channel_layer_group_sends_total") == 1
        assert total(seen, "deploykit_websocket_messages_total", direction="sent") == 3 * 2  # hello + the message
        assert total(seen, "deploykit_server_processes", state="live") == 2
        assert http_get(address, METRICS, source="127.0.0.2").status == 403
    finally:
        outcome.proc.stop(timeout=15)
        if nginx is not None:
            nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_for_tutorial() -> Iterator[Any]:
    from tests.procs import RedisServer, short_tmpdir

    workdir = short_tmpdir("metrics-redis")
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
