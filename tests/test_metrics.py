"""METRICS_PATH (issue 17 item 7): what is counted, how processes add up, and that Prometheus reads it.

The output goes through prometheus_client's own parser and ``promtool check metrics`` (Debian's
prometheus package); real server processes behind real nginx: tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from deploykit import serverenv
from deploykit.metrics import wrap
from deploykit.metrics.asgi import MetricsMiddleware
from deploykit.plan import build_plan
from deploykit.servers import get_backend
from tests.conftest import require_tool
from tests.test_plan import dk

PATH = "/-/metrics"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: the status the path names (/status/404); /boom raises. WebSocket: an echo that also group_sends."""
    if scope["type"] == "http":
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        status = int(scope["path"].rpartition("/")[2] or 200)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
    elif scope["type"] == "websocket":
        await receive()  # connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await get_channel_layer().group_send("room", {"type": "chat.message"})
            await send({"type": "websocket.send", "text": message["text"]})


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every family the real parser reads: name -> {sorted labels: value}."""
    parsed: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return parsed


async def scrape(application: Any, method: str = "GET") -> dict[str, Any]:
    response: dict[str, Any] = await HttpCommunicator(application, method, PATH).get_response()
    return response


async def get(application: Any, path: str) -> int:
    response = await HttpCommunicator(application, "GET", path).get_response()
    return int(response["status"])


async def test_counts_http_websockets_and_group_sends(tmp_path: Path) -> None:
    middleware = MetricsMiddleware(app, PATH, str(tmp_path / "metrics"))
    for path in ["/status/200", "/status/200", "/status/404", "/status/302"]:
        await get(middleware, path)
    post = await HttpCommunicator(middleware, "POST", "/status/201").get_response()
    assert post["status"] == 201
    with pytest.raises(RuntimeError):
        await get(middleware, "/boom")
    first, second = WebsocketCommunicator(middleware, "/ws/"), WebsocketCommunicator(middleware, "/ws/")
    assert (await first.connect())[0] and (await second.connect())[0]
    for text in ("a", "b", "c"):
        await first.send_to(text_data=text)
        assert await first.receive_from() == text
    during = await scrape(middleware)
    await second.disconnect()
    after = await scrape(middleware)
    await first.disconnect()

    print(during["body"].decode())
    assert during["status"] == 200
    assert dict(during["headers"])[b"content-type"] == b"text/plain; version=0.0.4; charset=utf-8"
    seen = families(during["body"].decode())
    requests = seen["deploykit_http_requests_total"]
    assert requests == {
        (("method", "GET"), ("status", "2xx")): 2,
        (("method", "GET"), ("status", "4xx")): 1,
        (("method", "GET"), ("status", "3xx")): 1,
        (("method", "POST"), ("status", "2xx")): 1,
        (("method", "GET"), ("status", "5xx")): 1,  # the exception: the server answers 500
    }
    pid = str(__import__("os").getpid())
    assert seen["deploykit_websocket_connections_open"] == {(("pid", pid),): 2}
    assert seen["deploykit_websocket_connections_total"] == {(): 2}
    assert seen["deploykit_websocket_messages_total"] == {(("direction", "received"),): 3, (("direction", "sent"),): 3}
    assert seen["deploykit_channel_layer_group_sends_total"] == {(): 3}
    assert seen["deploykit_server_processes"] == {(("state", "live"),): 1, (("state", "exited"),): 0}
    # The scrape is not counted among the requests; the second socket is closed.
    later = families(after["body"].decode())
    assert later["deploykit_websocket_connections_open"] == {(("pid", pid),): 1}
    assert later["deploykit_http_requests_total"] == requests


async def test_head_and_other_methods(tmp_path: Path) -> None:
    middleware = MetricsMiddleware(app, PATH, str(tmp_path))
    head = await scrape(middleware, "HEAD")
    post = await scrape(middleware, "POST")
    assert (head["status"], head["body"]) == (200, b"")
    assert post["status"] == 405 and dict(post["headers"])[b"allow"] == b"GET, HEAD"


#: A process of its own: counts, then exits (``exit``) or waits on stdin while holding its file.
CHILD = """
import sys
from deploykit.metrics import store
s = store.Store(sys.argv[1])
s.counts[store.http_slot("GET", 200)] += 5
s.counts[store.WS_OPENED] += 2
s.counts[store.WS_OPEN] += 2
print("ready", flush=True)
if sys.argv[2] == "wait":
    sys.stdin.read()
"""


async def test_processes_add_up_and_exited_ones_keep_their_counters_not_their_gauges(tmp_path: Path) -> None:
    directory = str(tmp_path)
    exited = subprocess.run([sys.executable, "-c", CHILD, directory, "exit"], check=True, capture_output=True)
    assert exited.stdout == b"ready\n"
    live = subprocess.Popen(
        [sys.executable, "-c", CHILD, directory, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert live.stdout is not None and live.stdout.readline() == b"ready\n"
        middleware = MetricsMiddleware(app, PATH, directory)
        await get(middleware, "/status/200")
        seen = families((await scrape(middleware))["body"].decode())
    finally:
        live.communicate(b"", timeout=10)
    own = str(__import__("os").getpid())
    assert seen["deploykit_http_requests_total"] == {(("method", "GET"), ("status", "2xx")): 11}
    assert seen["deploykit_websocket_connections_total"] == {(): 4}
    # Open sockets: per live process only (the exited one's 2 are gone with it).
    assert seen["deploykit_websocket_connections_open"] == {(("pid", own),): 0, (("pid", str(live.pid)),): 2}
    assert seen["deploykit_server_processes"] == {(("state", "live"),): 2, (("state", "exited"),): 1}


async def test_promtool_accepts_the_output(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    middleware = MetricsMiddleware(app, PATH, str(tmp_path))
    await get(middleware, "/status/200")
    body = (await scrape(middleware))["body"]
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    print(result.stdout.decode(), result.stderr.decode())
    assert result.returncode == 0, result.stderr.decode()


def test_off_by_default_the_application_is_served_as_it_is() -> None:
    plan = build_plan()
    backend = get_backend(plan)
    assert plan.metrics is None
    # The drain (on by default) wraps the application; metrics add nothing to it.
    assert backend.target == "deploykit.drain:application"
    assert serverenv.TRUSTED_PROXIES not in backend.environment()
    with override_settings(DEPLOYKIT=dk(DRAIN_TIMEOUT=0)):
        assert get_backend(build_plan()).target == "testproject.asgi:application"
    assert not any(k.startswith(serverenv.PREFIX + "METRICS") for k in backend.environment())
    sentinel = object()
    assert wrap(sentinel, serverenv.read({})) is sentinel


@override_settings(DEPLOYKIT=dk(METRICS_PATH=PATH, SERVER="uvicorn", RUNTIME_DIRECTORY="/run/example"))
def test_on_the_wrapper_counts_and_the_environment_says_where() -> None:
    plan = build_plan()
    backend = get_backend(plan)
    env = backend.environment()
    # The drain wrapper serves through deploykit.proxy's build (it counts) whenever TRUSTED_PROXIES is written.
    assert backend.target == "deploykit.drain:application"
    assert env[serverenv.APP] == "testproject.asgi.application"
    assert env[serverenv.TRUSTED_PROXIES] == ""  # uvicorn applies X-Forwarded-* itself
    with override_settings(DEPLOYKIT=dk(METRICS_PATH=PATH, SERVER="uvicorn", DRAIN_TIMEOUT=0)):
        assert get_backend(build_plan()).target == "deploykit.proxy:application"
    assert env[serverenv.METRICS_PATH] == PATH
    assert env[serverenv.METRICS_DIR] == "/run/example/metrics"
    assert serverenv.GRANIAN_METRICS_PORT not in env
    read = serverenv.read(env)
    assert (read.metrics_path, read.metrics_dir, read.granian_metrics_port) == (PATH, "/run/example/metrics", None)
    # Inside the image the root filesystem is read-only: the directory is in /tmp.
    inner = get_backend(plan.in_container()).environment()
    assert inner[serverenv.METRICS_DIR] == "/tmp/deploykit-metrics"


@override_settings(DEPLOYKIT=dk(METRICS_PATH=PATH, SERVER="granian", GRANIAN_METRICS_PORT=9555))
def test_granian_exports_its_own_on_loopback_and_the_wrapper_passes_it_through() -> None:
    plan = build_plan()
    backend = get_backend(plan)
    argv = backend.argv()
    assert argv[argv.index("--metrics") :][:5] == [
        "--metrics",
        "--metrics-address",
        "127.0.0.1",
        "--metrics-port",
        "9555",
    ]
    assert backend.environment()[serverenv.GRANIAN_METRICS_PORT] == "9555"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("METRICS_PATH", "metrics", "must be a path"),
        ("METRICS_PATH", "/a b", "must be a path"),
        ("GRANIAN_METRICS_PORT", 0, ""),
        ("PROMETHEUS_NAMESPACE", "Not_A_Label", ""),
    ],
)
def test_invalid_values_name_the_setting(key: str, value: object, reason: str) -> None:
    from deploykit.exceptions import SpecError

    with override_settings(DEPLOYKIT=dk(**{"METRICS_PATH": PATH, "SERVER": "granian", key: value})):
        with pytest.raises(SpecError) as caught:
            build_plan()
    assert f'DEPLOYKIT["{key}"]' in str(caught.value) and reason in str(caught.value)


@pytest.mark.parametrize("case", ["uvicorn-redis-tls", "daphne-sentinel-subpath"])
def test_kubernetes_keeps_metrics_off_the_ingress_and_lets_prometheus_scrape_the_pods(
    case: str, tmp_path: Path
) -> None:
    import yaml

    from deploykit.targets.kubernetes import Kubernetes
    from tests.test_containers import case_plan

    with case_plan(case, METRICS_PATH=PATH, PROMETHEUS_NAMESPACE="observability") as plan:
        target = Kubernetes(plan)
        text = target.render()
        target.validate(text, tmp_path)  # kubernetes-validate
    docs = list(yaml.safe_load_all(text))
    port = plan.container.port
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["metadata"]["annotations"]
    path = plan.site.root_path + PATH
    assert pod == {"prometheus.io/scrape": "true", "prometheus.io/path": path, "prometheus.io/port": str(port)}
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config[serverenv.METRICS_PATH] == PATH
    assert config[serverenv.METRICS_DIR] == "/tmp/deploykit-metrics"
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    sources = [peer["namespaceSelector"]["matchLabels"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"kubernetes.io/metadata.name": "observability"} in sources
    # The public Ingress refuses the path to everyone: an Ingress of its own with an allow list nobody outside
    # matches (ingress-nginx applies an Ingress's annotations to its own locations only).
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    [closed] = [i for i in ingresses if i["metadata"]["name"].endswith("-metrics")]
    assert closed["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"] == "127.0.0.1/32"
    rules = closed["spec"]["rules"]
    assert rules and all(
        [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [(path, "Exact")] for rule in rules
    )


def test_kubernetes_without_metrics_is_unchanged() -> None:
    from deploykit.targets.kubernetes import Kubernetes
    from tests.test_containers import case_plan

    with case_plan("uvicorn-redis-tls") as plan:
        text = Kubernetes(plan).render()
    assert "prometheus.io" not in text and "-metrics" not in text


@pytest.mark.parametrize("proxy", ["nginx", "apache", "caddy"])
@pytest.mark.parametrize(("tls", "split"), [(False, False), (True, False), (True, True)])
def test_proxy_files_with_metrics_pass_their_validators(proxy: str, tls: bool, split: bool, tmp_path: Path) -> None:
    from deploykit.targets import TARGETS
    from tests.test_targets_matrix import matrix_plan

    extra: dict[str, Any] = {"PROXY": proxy, "METRICS_PATH": PATH, "HEALTH_PATH": "/-/ready"}
    if split:
        extra.update(WSGI_SERVER="gunicorn")
    with override_settings(WSGI_APPLICATION="testproject.wsgi.application"):
        plan = matrix_plan("uvicorn", "unix", tls, True, **extra)
    target = TARGETS[proxy](plan)
    text = target.render()
    assert text.count(plan.site.root_path + PATH) >= 2  # the site's deny and the catch-all's loopback route
    target.require_tool()
    target.validate(text, tmp_path)


def test_readmes_scrape_config_for_one_machine_passes_promtool(tmp_path: Path) -> None:
    """README's scrape job for Prometheus on the same machine. (Its Kubernetes job, Prometheus's own
    kubernetes-pods example, cannot be checked here: Debian's prometheus is built without Kubernetes discovery.)"""
    import re

    promtool = require_tool("promtool")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Metrics") : readme.index("## deployconfig")]
    job = re.findall(r"```yaml\n(.*?)```", section, re.S)[0]
    config = tmp_path / "prometheus.yml"
    config.write_text("\n".join(line[2:] for line in job.splitlines()) + "\n")
    result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"metrics_path: {PATH}" in job


def test_install_says_how_to_scrape() -> None:
    from deploykit.targets.bundle import install_guide, parts

    with override_settings(DEPLOYKIT=dk(METRICS_PATH=PATH)):
        plan = build_plan()
        text = install_guide(plan, parts(plan)).content
    assert f"http://127.0.0.1{PATH}" in text


async def test_a_directory_it_cannot_write_costs_the_numbers_of_other_processes_not_the_site(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    middleware = MetricsMiddleware(app, PATH, str(blocked / "metrics"))
    assert await get(middleware, "/status/200") == 200
    assert await get(middleware, "/status/200") == 200
    seen = families((await scrape(middleware))["body"].decode())
    assert seen["deploykit_http_requests_total"] == {(("method", "GET"), ("status", "2xx")): 2}
    assert seen["deploykit_server_processes"][(("state", "live"),)] == 1
    assert next(r.getMessage() for r in caplog.records if r.name == "deploykit.metrics").startswith(
        "metrics: cannot keep counters in"
    )


def test_gixy_finds_nothing_unexplained_in_the_metrics_locations(tmp_path: Path) -> None:
    from deploykit.targets.nginx import Nginx
    from tests.test_scanners import explanation, gixy_findings
    from tests.test_targets_matrix import matrix_plan

    sites = {}
    for tls in (False, True):
        sites[f"metrics-{tls}"] = Nginx(matrix_plan("uvicorn", "unix", tls, True, METRICS_PATH=PATH)).render()
    findings = gixy_findings(sites, tmp_path)
    serious = [f for f in findings if f["severity"] in ("HIGH", "MEDIUM") and explanation(f) is None]
    assert not serious, serious


def test_split_serving_the_wsgi_side_counts_into_its_own_folder_which_the_asgi_side_sums(tmp_path: Path) -> None:
    import threading

    from deploykit.metrics.wsgi import WsgiCounting
    from deploykit.servers.wsgi import get_wsgi_backend

    with override_settings(
        DEPLOYKIT=dk(METRICS_PATH=PATH, WSGI_SERVER="gunicorn", RUNTIME_DIRECTORY="/run/example"),
        WSGI_APPLICATION="testproject.wsgi.application",
    ):
        plan = build_plan()
    asgi_env, wsgi_env = get_backend(plan).environment(), get_wsgi_backend(plan).environment()
    assert wsgi_env[serverenv.METRICS_DIR] == "/run/example-http/metrics"
    assert serverenv.METRICS_PATH not in wsgi_env  # the proxies send METRICS_PATH to the ASGI side
    assert asgi_env[serverenv.METRICS_READ] == "/run/example-http/metrics"
    assert serverenv.read(asgi_env).metrics_read == ("/run/example-http/metrics",)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK", [])
        return [b"x"]

    own, http_side = tmp_path / "asgi", tmp_path / "http"
    counting = WsgiCounting(wsgi_app, str(http_side))

    def hammer() -> None:
        for i in range(500):
            path = "/missing" if i % 5 == 0 else "/"
            counting({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda status, headers: None)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    middleware = MetricsMiddleware(app, PATH, str(own), read=(str(http_side),))
    seen = families(asyncio.run(scrape(middleware))["body"].decode())
    assert seen["deploykit_http_requests_total"] == {
        (("method", "GET"), ("status", "2xx")): 1600,
        (("method", "GET"), ("status", "4xx")): 400,
    }
