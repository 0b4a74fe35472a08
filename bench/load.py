"""Load drivers: wrk for HTTP, bench.wsload for WebSockets; each bounded in time, each returns raw figures."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.procs import PYTHON, REPO

WRK = "/usr/bin/wrk"
WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")


class LoadFailed(RuntimeError):
    pass


def _tagged_json(stdout: str, tag: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith(tag + " "):
            return dict(json.loads(line[len(tag) + 1 :]))
    raise LoadFailed(f"no {tag} line in the output:\n{stdout[-2000:]}")


def wrk(
    url: str, *, duration: float, connections: int, threads: int = 2, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One wrk run; req/s and latency percentiles (ms) plus every error counter."""
    argv = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "5s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-s", str(WRK_SCRIPT), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if done.returncode != 0:
        raise LoadFailed(f"wrk failed ({done.returncode}): {done.stderr}")
    raw = _tagged_json(done.stdout, "WRKJSON")
    seconds = raw["duration_us"] / 1e6
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    return {
        "requests": raw["requests"],
        "duration_s": round(seconds, 3),
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "raw": raw,
    }


def warm(url: str, seconds: float = 1.0, headers: dict[str, str] | None = None) -> None:
    """A short unrecorded load: first requests pay for imports, caches and connection pools."""
    wrk(url, duration=seconds, connections=8, threads=1, headers=headers)


def wsload(*args: str, timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "bench.wsload", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise LoadFailed(f"bench.wsload {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return _tagged_json(done.stdout, "WSJSON")


def ws_echo(ws_base: str, *, connections: int, duration: float) -> dict[str, Any]:
    return wsload(
        "echo",
        "--url",
        f"{ws_base}/ws/echo/",
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        timeout=duration + 180,
    )


def ws_broadcast(
    ws_base: str, redis_url: str, layer_config: dict[str, Any], *, clients: int, messages: int
) -> dict[str, Any]:
    return wsload(
        "broadcast",
        "--url",
        ws_base,
        "--redis-url",
        redis_url,
        "--layer-config",
        json.dumps(layer_config),
        "--room",
        f"bench{time.monotonic_ns()}",
        "--clients",
        str(clients),
        "--messages",
        str(messages),
        timeout=300,
    )


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise LoadFailed(f"{argv} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed
