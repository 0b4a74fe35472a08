"""``python -m bench``: start every stack, alternate the loads, write bench/results/.

``python -m bench redeploy``: redeploys under load (bench.redeploy).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import load, report
from bench.procs import ProcessSet, cpu_share, cpu_snapshot, memory
from bench.stacks import CORES, HELLO_TARGET, NGINX, PAGE_PATH, REDIS, Lab, Stack, layer_configs
from tests.procs import PYTHON, http_get

RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError as exc:
        return f"missing ({exc})"
    return (done.stdout + done.stderr).strip().splitlines()[0]


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("django", "channels", "channels-redis", "daphne", "uvicorn", "websockets", "uvloop", "httptools"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found["nginx"] = _tool_version([NGINX, "-v"])
    found["redis"] = _tool_version([REDIS, "--version"])
    found["wrk"] = _tool_version([load.WRK, "-v"])
    return found


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "load_before": load_average(),
    }


def rotated(items: Sequence[str], round_no: int) -> list[str]:
    """The same stacks each round, starting one further along: position effects cancel out."""
    k = round_no % len(items) if items else 0
    return [*items[k:], *items[:k]]


def time_commands(lab: Lab, repeats: int) -> dict[str, list[float]]:
    """`deployconfig nginx` against `check`, alternated, each a fresh interpreter (what a user waits for)."""
    out = lab.tmp / "timing"
    out.mkdir()
    env = lab.django_env(DEPLOYKIT_SOCKET=str(out / "app.sock"))
    commands = {
        "deployconfig nginx": [PYTHON, "manage.py", "deployconfig", "nginx", "--output", str(out / "nginx.conf")],
        "check": [PYTHON, "manage.py", "check"],
    }
    lab.generate_nginx(env, out / "nginx.conf")  # fails early, with the command's message
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(repeats + 1):
        for name in rotated(list(commands), i):
            if "--output" in commands[name]:
                (out / "nginx.conf").unlink(missing_ok=True)
            elapsed = load.wall_time(commands[name], env)
            if i:  # the first pair warms the page cache
                times[name].append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    args_given = sys.argv[1:] if argv is None else argv
    if args_given[:1] == ["redeploy"]:
        # `bench/run redeploy ...`: redeploys under load (issue 16), its own options.
        from bench import redeploy

        return redeploy.main(args_given[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s loads, results/quick/")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick: 1)")
    parser.add_argument("--duration", type=float, help="seconds per load (default 10; --quick: 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--only", default="http,ws,broadcast,commands", help="comma-separated parts to run")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results, --quick: results/quick)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 10.0)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    parts = set(args.only.split(","))
    for tool in (NGINX, REDIS, load.WRK):
        if not shutil.which(tool):
            log(f"{tool} is missing: apt-get install nginx redis-server wrk (see README, Performance)")
            return 2

    # Ctrl-C and SIGTERM both unwind through the finally below, which stops everything.
    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # even when started with SIGINT ignored (nohup, &)
    tmp = Path(tempfile.mkdtemp(prefix="dkb-", dir="/tmp"))  # short: unix socket paths max 107 bytes
    procs = ProcessSet()
    lab = Lab(tmp, procs)
    results: dict[str, Any] = {
        "meta": {
            "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "rounds": rounds,
            "duration_s": duration,
            "wrk_connections": args.connections,
            "cores_used_for_workers": CORES,
            "machine": machine(),
            "versions": versions(),
        },
        "stacks": {},
        "http": {},
        "ws_echo": {},
        "broadcast": {},
        "commands": {},
        "http_page": {},
        "memory": {},
    }
    ok = False
    try:
        if "commands" in parts:
            log("timing deployconfig nginx against check")
            results["commands"] = time_commands(lab, 2 if args.quick else 5)
        log(f"starting redis and the stacks in {tmp}")
        lab.start_redis()
        stacks: dict[str, Stack] = {}
        cookie = lab.signed_in_cookie()
        if parts & {"http", "ws"}:
            stacks["a"] = lab.deploykit("a")
            stacks["b"] = lab.channels_docs("b")
            # Split serving (issue 15): HTTP through a WSGI server, WebSockets through runasgi's ASGI one.
            stacks["s_granian"] = lab.split("s_granian", "granian")
            stacks["s_gunicorn"] = lab.split("s_gunicorn", "gunicorn")
        if "http" in parts:
            stacks["c"] = lab.umap_docs("c")
            stacks["d"] = lab.direct("d")
            stacks["d_hand"] = lab.direct("d_hand", by_hand=True)
            stacks["e_direct"] = lab.direct("e_direct", target=HELLO_TARGET)
            stacks["e_nginx"] = lab.deploykit("e_nginx", target=HELLO_TARGET)
        layers = layer_configs(lab)
        bc_servers: dict[str, Stack] = {}
        if "broadcast" in parts:
            for variant, config in layers.items():
                layer = {
                    "default": {
                        "BACKEND": "channels_redis.core.RedisChannelLayer",
                        "CONFIG": {"hosts": [lab.redis_url], **config},
                    }
                }
                # Both run the printed argv: runasgi refuses channels_redis's defaults (W009,
                # idle consumers crash after 5 s), which this measurement compares on purpose.
                bc_servers[variant] = lab.direct(
                    f"bc{len(bc_servers)}",
                    by_hand=True,
                    settings="bench.settings",
                    extra_env={"BENCH_CHANNEL_LAYERS": json.dumps(layer)},
                )
        for key, stack in {**stacks, **{f"broadcast {k}": s for k, s in bc_servers.items()}}.items():
            results["stacks"][key] = {"label": report.LABELS.get(key, key), "url": stack.url, **stack.detail}
        log("stacks up: " + ", ".join(stacks) + (", broadcast servers" if bc_servers else ""))

        http_keys = [
            k
            for k in ("a", "b", "s_granian", "s_gunicorn", "c", "d", "d_hand", "e_direct", "e_nginx")
            if k in stacks and "http" in parts
        ]
        results["http"] = {k: [] for k in http_keys}
        page_keys = [k for k in ("a", "b", "s_granian", "s_gunicorn") if k in http_keys]
        results["http_page"] = {k: [] for k in page_keys}
        page_headers = {"Cookie": cookie}
        for key in page_keys:
            # The page itself, signed in: a redirect to the login page would measure nothing.
            seen = http_get(("127.0.0.1", stacks[key].port), PAGE_PATH, page_headers, timeout=10)
            if seen.status != 200 or b"Signed in as bench" not in seen.body:
                raise RuntimeError(f"{key}: GET {PAGE_PATH} signed in answered {seen.status}: {seen.body[:300]!r}")
        echo_conns = ("100", "1000")
        echo_keys = ["a", "b", "s_granian"]
        if "ws" in parts:
            results["ws_echo"] = {c: {k: [] for k in echo_keys} for c in echo_conns}
        if "broadcast" in parts:
            results["broadcast"] = {v: [] for v in bc_servers}
        warmup = 1.0  # wrk takes whole seconds
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}")
            for key in rotated(http_keys, r):
                load.warm(stacks[key].url, warmup)
                before, t0 = cpu_snapshot(stacks[key].procs), time.monotonic()
                res = load.wrk(stacks[key].url, duration=duration, connections=args.connections)
                res["cpu_cores"] = cpu_share(before, cpu_snapshot(stacks[key].procs), time.monotonic() - t0)
                results["http"][key].append(res)
                log(f"  http {key:9} {res['rps']:9,.0f} req/s  p99 {res['p99_ms']:7.2f} ms  errors {res['errors']}")
            for key in rotated(page_keys, r):
                url = f"http://127.0.0.1:{stacks[key].port}{PAGE_PATH}"
                load.warm(url, warmup, headers=page_headers)
                before, t0 = cpu_snapshot(stacks[key].procs), time.monotonic()
                res = load.wrk(url, duration=duration, connections=args.connections, headers=page_headers)
                res["cpu_cores"] = cpu_share(before, cpu_snapshot(stacks[key].procs), time.monotonic() - t0)
                results["http_page"][key].append(res)
                log(f"  page {key:9} {res['rps']:9,.0f} req/s  p99 {res['p99_ms']:7.2f} ms  errors {res['errors']}")
            if "ws" in parts:
                for conns in echo_conns:
                    for key in rotated(echo_keys, r):
                        before, t0 = cpu_snapshot(stacks[key].procs), time.monotonic()
                        res = load.ws_echo(stacks[key].ws_base, connections=int(conns), duration=duration)
                        # Over the whole call (connect, load, close): the split between processes is what tells.
                        res["cpu_cores"] = cpu_share(before, cpu_snapshot(stacks[key].procs), time.monotonic() - t0)
                        results["ws_echo"][conns][key].append(res)
                        log(
                            f"  echo {key} x{conns:5} {res['messages_per_s']:9,.0f} msg/s  p99 {res['p99_ms']:7.2f} ms"
                            f"  open {res['connections_open']} errors {res['errors']}"
                        )
                        time.sleep(1)  # let the closed connections' consumers wind down
            for variant in rotated(list(bc_servers), r):
                res = load.ws_broadcast(
                    bc_servers[variant].ws_base, lab.redis_url, layers[variant], clients=100, messages=1000
                )
                results["broadcast"][variant].append(res)
                log(
                    f"  broadcast {variant:24} lost {res['lost']:6} of {res['expected_deliveries']}  "
                    f"{res['deliveries_per_s']:9,.0f} deliveries/s  per pid {res['clients_per_pid']}"
                )
        # After the loads: what each stack holds once warm (PSS of its process groups, nginx included).
        results["memory"] = {key: memory(stack.procs) for key, stack in stacks.items()}
        ok = True
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
    finally:
        procs.stop_all()
        results["meta"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        results["meta"]["machine"]["load_after"] = load_average()
        if not ok or args.keep:
            log(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        return 1
    summary = report.write(results, out)
    sys.stdout.write((out / "latest.md").read_text())
    log(f"wrote {out}/latest.json, latest.md, chart.png")
    missed = [t["name"] for t in summary["targets"] if t["met"] is False]
    if missed:
        log("targets missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
