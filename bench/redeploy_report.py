"""The figures of bench.redeploy: one procedure's load and events summarized, and the table of both."""

from __future__ import annotations

from typing import Any


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    return {"min": at(0), "p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "max": at(1)}


def summarize(procedure: str, raw: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    ws = raw["ws"]
    closes = ws["closes"]
    windows = []
    offsets: list[float] = []
    odd: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        end = events[index + 1]["started"] if index + 1 < len(events) else raw["finished"]
        times = [t - event["drain_start"] for t, _ in closes if event["started"] <= t < end]
        offsets += times
        # What went wrong, timed from this redeploy's drain: closes without 1012, replies given up on (lost or late),
        # failed HTTP requests.
        odd += [
            {"redeploy": index, "close_code": code, "at_s": round(t - event["drain_start"], 3)}
            for t, code in closes
            if event["started"] <= t < end and code != 1012
        ]
        odd += [
            {"redeploy": index, "gave_up": f"{client}:{seq}", "at_s": round(t - event["drain_start"], 3)}
            for t, client, seq in ws["lost_events"]
            if event["started"] <= t < end
        ]
        odd += [
            {"redeploy": index, "http_failed": what, "at_s": round(t - event["drain_start"], 3)}
            for t, what in raw["http"]["failures"]
            if event["started"] <= t < end
        ]
        windows.append({"closes": len(times), "spread_s": round(max(times) - min(times), 3) if times else 0.0})
    return {
        "procedure": procedure,
        "redeploys": len(events),
        "http_ok": raw["http"]["ok"],
        "http_failed": sum(raw["http"]["non_2xx"].values()) + sum(raw["http"]["errors"].values()),
        "http_non_2xx": raw["http"]["non_2xx"],
        "http_errors": raw["http"]["errors"],
        "http_keepalive_retried": raw["http"]["keepalive_retried"],
        "ws_clients": ws["clients"],
        "ws_closes": len(closes),
        "ws_close_codes": {str(k): v for k, v in _count(code for _, code in closes).items()},
        "ws_reconnected": len(ws["reconnects"]),
        "ws_connected_at_end": ws["connected_at_end"],
        "ws_connect_failures": ws["connect_failures"],
        "messages_sent": ws["sent"],
        "messages_lost": ws["lost"],
        "odd_events": odd,
        "messages_retried": ws["retried"],
        "messages_unexpected": ws["unexpected"],
        "messages_late": ws["late"],
        "reconnect_s": percentiles([opened - closed for closed, opened, _ in ws["reconnects"]]),
        # When the closes came, from the start of each drain (the restart's command for the baseline).
        "close_offsets_s": percentiles(offsets),
        "windows": windows,
        "min_spread_s": min((w["spread_s"] for w in windows if w["closes"]), default=0.0),
        # How long each redeploy command took (slots: start, ready, switch, drain, stop).
        "command_s": percentiles([e["seconds"] for e in events]),
        "command_timings": [e["timings"] for e in events],
        # Connections on the old slot's sockets before the proxy's reload and after it settled, per redeploy.
        "reload_kept": [e.get("reload_kept") for e in events],
    }


def _count(values: Any) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        ("redeploys", "redeploys"),
        ("HTTP requests answered 2xx", "http_ok"),
        ("HTTP failed (non-2xx + socket errors)", "http_failed"),
        ("HTTP non-2xx by status", "http_non_2xx"),
        ("HTTP socket errors", "http_errors"),
        ("HTTP requests resent on a kept-alive connection the proxy closed", "http_keepalive_retried"),
        ("WebSocket clients", "ws_clients"),
        ("WebSocket closes (by code)", "ws_close_codes"),
        ("reconnected / closes", None),
        ("connected at the end", "ws_connected_at_end"),
        ("failed reconnect attempts", "ws_connect_failures"),
        ("numbered messages sent / lost / resent after rejoin", None),
        ("replies later than 10 s (counted, not lost)", "messages_late"),
        ("reconnect time s (close to rejoined)", "reconnect_s"),
        ("closes after the drain start, s", "close_offsets_s"),
        ("narrowest spread of one redeploy's closes, s", "min_spread_s"),
        ("the command's wall time, s", "command_s"),
    ]
    head = "| | " + " | ".join(r["procedure"] for r in results) + " |\n|---|" + "---:|" * len(results) + "\n"
    lines = []
    for label, key in rows:
        cells = []
        for r in results:
            if label.startswith("reconnected"):
                cells.append(f"{r['ws_reconnected']} / {r['ws_closes']}")
            elif label.startswith("numbered"):
                cells.append(f"{r['messages_sent']} / {r['messages_lost']} / {r['messages_retried']}")
            else:
                value = r[key or ""]
                cells.append(
                    ", ".join(f"{k} {v}" for k, v in value.items()) or "0" if isinstance(value, dict) else str(value)
                )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"
