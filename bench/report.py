"""Medians, ratios, targets; the Markdown table, the JSON file and the chart."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

LABELS = {
    "a": "(a) deploykit: deployconfig nginx + runasgi",
    "b": "(b) Channels docs: nginx + 2 daphne",
    "s_granian": "(s) split: nginx + granian WSGI (HTTP) + runasgi (WebSockets)",
    "s_gunicorn": "(s') split: nginx + gunicorn gthread WSGI (HTTP) + runasgi (WebSockets)",
    "c": "(c) uMap docs: nginx + uvicorn (UVICORN_WORKERS)",
    "d": "(d) (a)'s server direct (runasgi), no nginx",
    "d_hand": "(d') (a)'s server argv started by hand",
    "e_direct": "(e) bare ASGI app, direct",
    "e_nginx": "(e) bare ASGI app behind (a)'s nginx",
}
SHORT = {
    "a": "(a) deploykit",
    "b": "(b) Channels docs",
    "s_granian": "(s) split, granian",
    "s_gunicorn": "(s') split, gunicorn",
    "c": "(c) uMap docs",
    "d": "(d) direct",
    "d_hand": "(d') by hand",
    "e_direct": "(e) hello direct",
    "e_nginx": "(e) hello+nginx",
}


def median(values: list[float]) -> float:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


def ratio(num: float, den: float) -> float:
    return num / den if den and not math.isnan(den) else float("nan")


def cpu_split(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Median cores used by the proxy (nginx) and by the server processes over the runs."""
    proxy = [sum(v for k, v in r.get("cpu_cores", {}).items() if k.endswith("-nginx")) for r in runs]
    server = [sum(v for k, v in r.get("cpu_cores", {}).items() if not k.endswith("-nginx")) for r in runs]
    return median(proxy), median(server)


def _http(by_stack: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {
        key: {
            "rps": median([r["rps"] for r in runs]),
            "p50_ms": median([r["p50_ms"] for r in runs]),
            "p99_ms": median([r["p99_ms"] for r in runs]),
            "rps_min": min(r["rps"] for r in runs),
            "rps_max": max(r["rps"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "rounds": len(runs),
            "cpu_proxy": cpu_split(runs)[0],
            "cpu_server": cpu_split(runs)[1],
        }
        for key, runs in by_stack.items()
        if runs
    }


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    http = _http(results["http"])
    page = _http(results.get("http_page", {}))
    memory = {key: sum(groups.values()) for key, groups in results.get("memory", {}).items()}
    echo: dict[str, dict[str, Any]] = {}
    for conns, by_stack in results["ws_echo"].items():
        echo[conns] = {
            key: {
                "messages_per_s": median([r["messages_per_s"] for r in runs]),
                "p50_ms": median([r["p50_ms"] for r in runs]),
                "p99_ms": median([r["p99_ms"] for r in runs]),
                "open_min": min(r["connections_open"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "client_cpu_share": median([r["client_cpu_s"] / r["duration_s"] for r in runs]),
                "cpu_proxy": cpu_split(runs)[0],
                "cpu_server": cpu_split(runs)[1],
            }
            for key, runs in by_stack.items()
            if runs
        }
    broadcast = {
        variant: {
            "capacity": runs[0]["layer_config"].get("capacity", "default (100)"),
            "expected": runs[0]["expected_deliveries"],
            "lost_median": median([r["lost"] for r in runs]),
            "lost_max": max(r["lost"] for r in runs),
            "deliveries_per_s": median([r["deliveries_per_s"] for r in runs]),
            "clients_per_pid": runs[-1]["clients_per_pid"],
        }
        for variant, runs in results["broadcast"].items()
        if runs
    }
    timing = {name: median(times) for name, times in results["commands"].items() if times}

    def h(key: str, field: str = "rps") -> float:
        return float(http.get(key, {}).get(field, float("nan")))

    def e(conns: str, key: str) -> float:
        return float(echo.get(conns, {}).get(key, {}).get("messages_per_s", float("nan")))

    def p(key: str) -> float:
        return float(page.get(key, {}).get("rps", float("nan")))

    def mem(key: str) -> float:
        return float(memory.get(key, float("nan")))

    dk = broadcast.get("deploykit", {})
    targets = [
        ("split (granian) / (b), HTTP /whoami/", ratio(h("s_granian"), h("b")), ">=", 4.0),
        ("split (granian) / (b), realistic page", ratio(p("s_granian"), p("b")), ">=", 3.0),
        ("split (granian) / (a), HTTP /whoami/", ratio(h("s_granian"), h("a")), ">=", 2.5),
        ("split (gunicorn) / (a), HTTP /whoami/", ratio(h("s_gunicorn"), h("a")), "info", None),
        ("split (granian) / (a), realistic page", ratio(p("s_granian"), p("a")), "info", None),
        ("WS echo split / (a), 100 conns", ratio(e("100", "s_granian"), e("100", "a")), ">=", 0.95),
        ("memory (PSS) split (granian) / (a)", ratio(mem("s_granian"), mem("a")), "<=", 1.5),
        ("HTTP req/s (a)/(b)", ratio(h("a"), h("b")), ">=", 1.35),
        ("HTTP req/s (a)/(c)", ratio(h("a"), h("c")), ">=", 1.15),
        ("HTTP req/s (a)/(d)", ratio(h("a"), h("d")), ">=", 0.92),
        ("HTTP req/s bare app: nginx/direct", ratio(h("e_nginx"), h("e_direct")), ">=", 0.6),
        ("WS echo msg/s (a)/(b), 100 conns", ratio(e("100", "a"), e("100", "b")), ">=", 1.6),
        ("WS echo msg/s (a)/(b), 1000 conns", ratio(e("1000", "a"), e("1000", "b")), "info", None),
        ("broadcast lost, deploykit layer (worst round)", float(dk.get("lost_max", float("nan"))), "==", 0),
        ("HTTP req/s runasgi/by hand", ratio(h("d"), h("d_hand")), ">=", 0.98),
        (
            "wall time deployconfig nginx / check",
            ratio(timing.get("deployconfig nginx", float("nan")), timing.get("check", float("nan"))),
            "<=",
            1.2,
        ),
    ]
    rows = []
    for name, value, op, goal in targets:
        if goal is None or math.isnan(value):
            met = None
        elif op == ">=":
            met = value >= goal
        elif op == "<=":
            met = value <= goal
        else:
            met = value == goal
        rows.append({"name": name, "measured": value, "op": op, "target": goal, "met": met})
    return {
        "http": http,
        "http_page": page,
        "memory": memory,
        "ws_echo": echo,
        "broadcast": broadcast,
        "commands": timing,
        "targets": rows,
    }


def _f(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _cpu(s: dict[str, Any]) -> str:
    proxy = "-" if not s["cpu_proxy"] else f"{s['cpu_proxy']:.2f}"
    return f"{proxy} / {s['cpu_server']:.2f}"


def markdown(results: dict[str, Any], summary: dict[str, Any]) -> str:
    meta = results["meta"]
    out = []
    m = meta["machine"]
    out.append(
        f"Run {meta['finished']} · {meta['rounds']} round(s), {meta['duration_s']:g} s loads, stacks alternated · "
        f"{m['nproc']} cores ({m['cpu_model']}), {m['memory']} · load average before {m['load_before']}, "
        f"after {m['load_after']}"
    )
    out.append("")
    out.append(
        f"HTTP: `wrk -t2 -c{meta['wrk_connections']}` on `GET /whoami/` (Django) or `GET /` (bare app); medians."
    )
    out.append("")
    out.append("| stack | req/s | p50 ms | p99 ms | ratio to (a) | errors | CPU cores: nginx / server |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    http = summary["http"]
    ref = http.get("a", {}).get("rps", float("nan"))
    for key, s in http.items():
        out.append(
            f"| {LABELS[key]} | {_f(s['rps'])} | {_f(s['p50_ms'], 2)} | {_f(s['p99_ms'], 2)} | "
            f"{_f(ratio(s['rps'], ref), 2)} | {s['errors']} | {_cpu(s)} |"
        )
    if summary.get("http_page"):
        out.append("")
        out.append(
            "Realistic page: `GET /account/` with a signed-in session cookie (Django's auth middleware loads the "
            "user, the view runs one query on SQLite and renders a template); medians."
        )
        out.append("")
        out.append(
            "| stack | req/s | p50 ms | p99 ms | ratio to (a) | ratio to (b) | errors | CPU cores: nginx / server |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        page = summary["http_page"]
        ref_a = page.get("a", {}).get("rps", float("nan"))
        ref_b = page.get("b", {}).get("rps", float("nan"))
        for key, s in page.items():
            out.append(
                f"| {LABELS[key]} | {_f(s['rps'])} | {_f(s['p50_ms'], 2)} | {_f(s['p99_ms'], 2)} | "
                f"{_f(ratio(s['rps'], ref_a), 2)} | {_f(ratio(s['rps'], ref_b), 2)} | {s['errors']} | {_cpu(s)} |"
            )
    if summary.get("memory"):
        out.append("")
        out.append("Memory after the loads: PSS of every process of the stack (nginx, servers and their workers).")
        out.append("")
        out.append("| stack | MiB | ratio to (a) |")
        out.append("|---|---:|---:|")
        ref_mem = summary["memory"].get("a", float("nan"))
        for key, total in summary["memory"].items():
            out.append(f"| {LABELS.get(key, key)} | {total / 2**20:,.0f} | {_f(ratio(total, ref_mem), 2)} |")
    if summary["ws_echo"]:
        out.append("")
        out.append("WebSocket echo (`/ws/echo/`, 64-byte text, each connection in a closed loop); medians.")
        out.append("")
        out.append(
            "| stack | connections | messages/s | p50 ms | p99 ms | ratio to (a) | open / errors | client CPU "
            "| CPU cores: nginx / server |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for conns, by_stack in summary["ws_echo"].items():
            ref = by_stack.get("a", {}).get("messages_per_s", float("nan"))
            for key, s in by_stack.items():
                out.append(
                    f"| {SHORT[key]} | {conns} | {_f(s['messages_per_s'])} | {_f(s['p50_ms'], 2)} | "
                    f"{_f(s['p99_ms'], 2)} | {_f(ratio(s['messages_per_s'], ref), 2)} | "
                    f"{s['open_min']} / {s['errors']} | {s['client_cpu_share']:.2f} | {_cpu(s)} |"
                )
    if summary["broadcast"]:
        out.append("")
        b0 = next(iter(results["broadcast"].values()))[0]
        out.append(
            f"Broadcast: {b0['messages_sent']} `group_send` as fast as possible to {b0['clients_requested']} clients "
            "over 2 server processes (runasgi --print-command's uvicorn --workers 2)."
        )
        out.append("")
        out.append("| channel layer config | capacity | lost (median / worst) of | deliveries/s |")
        out.append("|---|---:|---:|---:|")
        for variant, s in summary["broadcast"].items():
            out.append(
                f"| {variant} | {s['capacity']} | {_f(s['lost_median'])} / {_f(s['lost_max'])} of {s['expected']:,} | "
                f"{_f(s['deliveries_per_s'])} |"
            )
    if summary["commands"]:
        out.append("")
        out.append("| command | wall time (median) |")
        out.append("|---|---:|")
        for name, seconds in summary["commands"].items():
            out.append(f"| `manage.py {name}` | {seconds:.2f} s |")
    out.append("")
    out.append("| target | measured | target | met |")
    out.append("|---|---:|---:|:---:|")
    for t in summary["targets"]:
        goal = "" if t["target"] is None else f"{t['op']} {t['target']}"
        met = "" if t["met"] is None else ("yes" if t["met"] else "**no**")
        out.append(f"| {t['name']} | {_f(t['measured'], 2)} | {goal} | {met} |")
    return "\n".join(out) + "\n"


def _on_top(ax: Any, bar: Any, text: str, size: int = 7) -> None:
    ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=size)


def chart(results: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    m = results["meta"]["machine"]
    fig.suptitle(
        f"deploykit benchmark · {m['nproc']} cores, {m['cpu_model']} · {results['meta']['rounds']} rounds of "
        f"{results['meta']['duration_s']:g} s, medians (error bars: min-max over rounds)",
        fontsize=11,
    )
    colors = {
        "a": "#2a7ab0",
        "b": "#d9822b",
        "c": "#b04a4a",
        "d": "#5a9e5a",
        "d_hand": "#8fbf8f",
        "s_granian": "#6a3d9a",
        "s_gunicorn": "#9e7bc4",
    }
    http = summary["http"]
    # Two panels, linear scales: the bare app answers ~10x faster than Django.
    for ax, keys, title in (
        (axes[0][0], [k for k in http if not k.startswith("e_")], "HTTP, Django GET /whoami/ (wrk)"),
        (axes[1][0], [k for k in http if k.startswith("e_")], "HTTP, bare ASGI app (e): nginx's own cost"),
    ):
        vals = [http[k]["rps"] for k in keys]
        err = [[http[k]["rps"] - http[k]["rps_min"] for k in keys], [http[k]["rps_max"] - http[k]["rps"] for k in keys]]
        bars = ax.bar(range(len(keys)), vals, yerr=err, capsize=3, color=[colors.get(k, "#999999") for k in keys])
        for bar, k in zip(bars, keys, strict=True):
            _on_top(ax, bar, f"{http[k]['rps']:,.0f}\np99 {http[k]['p99_ms']:.0f} ms")
        ax.set_xticks(range(len(keys)), [SHORT[k] for k in keys], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("requests/s (higher is better)")
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.15)

    ax = axes[0][1]
    echo = summary["ws_echo"]
    if echo:
        groups = list(echo)
        stacks = sorted({k for g in groups for k in echo[g]})
        width = 0.8 / max(1, len(stacks))
        for i, k in enumerate(stacks):
            xs = [j + i * width for j in range(len(groups))]
            ys = [echo[g].get(k, {}).get("messages_per_s", 0) for g in groups]
            bars = ax.bar(xs, ys, width, label=SHORT[k], color=colors.get(k))
            for bar, g in zip(bars, groups, strict=True):
                p99 = echo[g].get(k, {}).get("p99_ms", float("nan"))
                _on_top(ax, bar, f"p99 {p99:.0f} ms")
        ax.set_xticks(
            [j + width * (len(stacks) - 1) / 2 for j in range(len(groups))], [f"{g} connections" for g in groups]
        )
        ax.legend(fontsize=8)
    ax.set_ylabel("echoed messages/s (higher is better)")
    ax.set_title("WebSocket echo, /ws/echo/ through nginx", fontsize=10)
    ax.margins(y=0.15)

    ax = axes[0][2]
    bc = summary["broadcast"]
    if bc:
        names = list(bc)
        bars = ax.bar(range(len(names)), [bc[n]["deliveries_per_s"] for n in names], color=["#2a7ab0", "#d9822b"])
        for bar, n in zip(bars, names, strict=True):
            _on_top(ax, bar, f"lost {bc[n]['lost_median']:,.0f} of {bc[n]['expected']:,}", 8)
        ax.set_xticks(range(len(names)), [f"{n}\n(capacity {bc[n]['capacity']})" for n in names], fontsize=8)
    ax.set_ylabel("deliveries/s")
    ax.set_title("Broadcast: 1000 group messages to 100 clients, 2 processes", fontsize=10)
    ax.margins(y=0.15)

    ax = axes[1][1]
    timing = summary["commands"]
    if timing:
        bars = ax.bar(range(len(timing)), list(timing.values()), color=["#2a7ab0", "#999999"])
        for bar, seconds in zip(bars, timing.values(), strict=True):
            _on_top(ax, bar, f"{seconds:.2f} s", 8)
        ax.set_xticks(range(len(timing)), [f"manage.py {name}" for name in timing], fontsize=8)
        ax.margins(y=0.15)
    ax.set_ylabel("wall time, s (lower is better)")
    ax.set_title("deployconfig nginx against check (fresh interpreter each)", fontsize=10)

    ax = axes[1][2]
    targets = [t for t in summary["targets"] if t["target"] is not None and t["op"] in (">=", "<=")]
    names = [t["name"] for t in targets]
    normalized = [t["measured"] / t["target"] if t["op"] == ">=" else t["target"] / t["measured"] for t in targets]
    ax.barh(
        range(len(names)),
        normalized,
        color=["#5a9e5a" if t["met"] else "#b04a4a" for t in targets],
    )
    for i, t in enumerate(targets):
        ax.annotate(f" {t['measured']:.2f} ({t['op']} {t['target']})", (normalized[i], i), va="center", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlim(0, max([1.0, *normalized]) * 1.45)  # room for the labels
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("measured / target (>= 1: target met)")
    ax.set_title("Targets (green: met)", fontsize=10)

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    results = {**results, "summary": summary}
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "latest.md").write_text(markdown(results, summary), encoding="utf-8")
    chart(results, summary, out / "chart.png")
    return summary
