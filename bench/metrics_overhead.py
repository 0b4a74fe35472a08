"""What METRICS_PATH costs (issue 17 item 7): per HTTP request and per WebSocket message, A/B in one run.

``python -m bench.metrics_overhead`` (about a minute; not part of the test suite). Two measurements:

1. In process: the same tiny ASGI app called directly (B) and through deploykit's MetricsMiddleware (A),
   alternated in rounds; the difference per request and per message is the counting's own cost.
2. Real server: uvicorn (1 worker, TCP, loopback) serving that app through ``deploykit.proxy:application``
   with (A) and without (B) ``DEPLOYKIT_SERVER_METRICS_PATH``, alternated in rounds: wrk on HTTP, bench.wsload
   echo on WebSockets; medians and the A/B ratio.

``python -m bench.metrics_overhead --calls http|ws with|without`` only sends 200,000 requests (or WebSocket
messages) through the app, with or without the middleware: time each process from outside (``/usr/bin/time``,
CPU seconds), several runs of each in turn, and subtract the interpreter's start-up (``--calls none``).

Metrics off is not measured: then the argv loads the application itself, the same argv as before
(tests/test_metrics.py asserts it), so it costs nothing by construction.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import wrk, ws_echo
from bench.procs import ProcessSet, wait_http
from deploykit import serverenv
from tests.procs import PYTHON, free_port, http_get

ROUNDS = 5
CALLS = 20_000
LOAD_SECONDS = 3.0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Hello on HTTP, echo on WebSockets: the cheapest app, so the wrapper's share is the largest it can be."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"hi"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": message.get("text")})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


async def _http_calls(application: Any, n: int) -> float:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "root_path": ""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    start = time.perf_counter()
    for _ in range(n):
        await application(scope, receive, send)
    return (time.perf_counter() - start) / n


async def _ws_messages(application: Any, n: int) -> float:
    scope = {"type": "websocket", "path": "/ws/", "headers": [], "root_path": ""}
    inbox: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    inbox += [{"type": "websocket.receive", "text": "x"}] * n
    inbox.append({"type": "websocket.disconnect", "code": 1000})
    feed = iter(inbox)

    async def receive() -> dict[str, Any]:
        return next(feed)

    async def send(message: dict[str, Any]) -> None:
        pass

    start = time.perf_counter()
    await application(scope, receive, send)
    return (time.perf_counter() - start) / n


def in_process(directory: str) -> dict[str, Any]:
    from deploykit.metrics.asgi import MetricsMiddleware
    from deploykit.metrics.store import Store

    counted = MetricsMiddleware(app, "/-/metrics", directory)
    # Made here, not on first use: no channel layer in this process (group sends are not measured here).
    counted.store = Store(directory)
    rows: dict[str, list[float]] = {"http_a": [], "http_b": [], "ws_a": [], "ws_b": []}
    for _ in range(ROUNDS):
        rows["http_b"].append(asyncio.run(_http_calls(app, CALLS)))
        rows["http_a"].append(asyncio.run(_http_calls(counted, CALLS)))
        rows["ws_b"].append(asyncio.run(_ws_messages(app, CALLS)))
        rows["ws_a"].append(asyncio.run(_ws_messages(counted, CALLS)))
    med = {k: statistics.median(v) * 1e6 for k, v in rows.items()}
    return {
        "http_us_without": round(med["http_b"], 3),
        "http_us_with": round(med["http_a"], 3),
        "http_us_added": round(med["http_a"] - med["http_b"], 3),
        "ws_message_us_without": round(med["ws_b"], 3),
        "ws_message_us_with": round(med["ws_a"], 3),
        "ws_message_us_added": round(med["ws_a"] - med["ws_b"], 3),
    }


def served(workdir: Path) -> dict[str, Any]:
    procs = ProcessSet()
    results: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
    try:
        ports = {"with": free_port(), "without": free_port()}
        for name, port in ports.items():
            env = {
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                serverenv.APP: "bench.metrics_overhead.app",
                serverenv.TRUSTED_PROXIES: "",
            }
            if name == "with":
                env[serverenv.METRICS_PATH] = "/-/metrics"
                env[serverenv.METRICS_DIR] = str(workdir / "metrics")
            argv = [PYTHON, "-m", "uvicorn", "deploykit.proxy:application", "--port", str(port), "--workers", "1"]
            argv += ["--no-access-log", "--lifespan", "on", "--ws-per-message-deflate", "false"]
            proc = procs.start(name, argv, log_dir=workdir, env=env)
            wait_http([proc], port, "/", expect=b"hi")
        for round_number in range(ROUNDS):
            order = ["with", "without"] if round_number % 2 == 0 else ["without", "with"]
            for name in order:
                url = f"http://127.0.0.1:{ports[name]}/"
                http = wrk(url, duration=LOAD_SECONDS, connections=32, threads=1)
                ws = ws_echo(f"ws://127.0.0.1:{ports[name]}", connections=50, duration=LOAD_SECONDS)
                results[name].append({"rps": http["rps"], "errors": http["errors"], "msgs": ws["messages_per_s"]})
        metrics = http_get(("127.0.0.1", ports["with"]), "/-/metrics")
    finally:
        procs.stop_all()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    ratios_http = [a["rps"] / b["rps"] for a, b in zip(results["with"], results["without"], strict=True)]
    ratios_ws = [a["msgs"] / b["msgs"] for a, b in zip(results["with"], results["without"], strict=True)]
    return {
        "http_rps_with": round(median("with", "rps")),
        "http_rps_without": round(median("without", "rps")),
        "http_ratio_median": round(statistics.median(ratios_http), 3),
        "ws_msgs_with": round(median("with", "msgs")),
        "ws_msgs_without": round(median("without", "msgs")),
        "ws_ratio_median": round(statistics.median(ratios_ws), 3),
        "errors": sum(r["errors"] for rs in results.values() for r in rs),
        "rounds": results,
        "scrape_status": metrics.status,
        "scrape_excerpt": [line for line in metrics.body.decode().splitlines() if not line.startswith("#")][:8],
    }


def calls(kind: str, with_metrics: bool, n: int = 200_000) -> None:
    from deploykit.metrics.asgi import MetricsMiddleware
    from deploykit.metrics.store import Store

    target: Any = app
    with tempfile.TemporaryDirectory(prefix="dk-metrics-calls-") as tmp:
        if with_metrics:
            target = MetricsMiddleware(app, "/-/metrics", tmp)
            target.store = Store(tmp)
        if kind == "http":
            asyncio.run(_http_calls(target, n))
        elif kind == "ws":
            asyncio.run(_ws_messages(target, n))


def main() -> None:
    if "--calls" in sys.argv:
        at = sys.argv.index("--calls")
        calls(sys.argv[at + 1], sys.argv[at + 2 : at + 3] == ["with"])
        return
    with tempfile.TemporaryDirectory(prefix="dk-metrics-bench-") as tmp:
        report = {"in_process": in_process(str(Path(tmp) / "inproc"))}
        if "--in-process-only" not in sys.argv:
            report["served"] = served(Path(tmp))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
