"""Two slots and a switch behind Apache and Caddy (issue 16): test_redeploy.py's load and real ``manage.py
redeploy``, with the proxy's own test and graceful reload (``apachectl -k graceful``, ``caddy reload``) run on
this test's running instance, twice (blue -> green -> blue).

What each proxy's reload does to the WebSockets it tunnels and the requests in flight is the question: the
slot's drain closes every WebSocket with 1012, spread over its window, only if the reload itself closes none.
Apache's graceful restart leaves both alone: its test asserts all of test_redeploy.py's promises. Caddy 2.6
(Debian 12's) closes every WebSocket it tunnels on a reload, with 1001 or no close frame at all, and cancels the
requests in flight through the old configuration (502): caddy#5471, answered in Caddy 2.7 by
``stream_close_delay``, which 2.6 refuses. Caddy's test pins that limit (so a Caddy that keeps the streams
fails it, to be promoted to Apache's assertions), and asserts that nothing else fails.

One test per proxy, each measuring once: under ``-n 2`` the module's tests are not kept on one worker, and
a module fixture would measure each proxy once per worker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.redeploy import SlotSettings, run_procedure, slot_stack
from bench.redeploy_report import table
from deploykit.redeploy import SETTLE
from tests.conftest import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-redeploy")]

CLIENTS = 50
REDEPLOYS = 2
DRAIN_TIMEOUT = 3
TOOLS = {"apache": ("apache2", "apachectl"), "caddy": ("caddy",)}
#: The reload, in seconds from the drain's start (redeploy waits SETTLE between them), give or take this much.
RELOAD_AT, NEAR = -SETTLE, 0.5


def measure(proxy: str) -> dict[str, Any]:
    for tool in ("redis-server", "supervisord", "supervisorctl", *TOOLS[proxy]):
        require_tool(tool)
    with slot_stack(SlotSettings(DRAIN_TIMEOUT, graceful_timeout=5, workers=1), proxy=proxy) as stack:
        found = run_procedure(stack, "slots", redeploys=REDEPLOYS, clients=CLIENTS, http_connections=4, interval=0.5)
        found["live_at_end"] = stack.live()
        # Reloaded in place, never restarted: the process that served the first request serves the last.
        found["proxy_alive"] = stack.proxy_proc.alive()
    print(f"\n{proxy}:\n" + table([found]))
    print(json.dumps({k: found[k] for k in ("windows", "reload_kept", "close_offsets_s", "odd_events")}))
    assert found["redeploys"] == REDEPLOYS
    assert found["live_at_end"] == "blue" and found["proxy_alive"]
    assert found["http_ok"] > 0
    # Every client came back, and no message was lost.
    assert found["ws_reconnected"] == found["ws_closes"] and found["ws_connected_at_end"] == CLIENTS
    assert found["messages_lost"] == 0 and found["messages_unexpected"] == 0, found["odd_events"]
    return found


def at_the_reload(event: dict[str, Any]) -> bool:
    return abs(float(event["at_s"]) - RELOAD_AT) <= NEAR


def test_redeploy_behind_apache_fails_nothing_and_the_drain_spreads_every_close() -> None:
    found = measure("apache")
    assert found["http_failed"] == 0, (found["http_non_2xx"], found["http_errors"], found["odd_events"])
    # The graceful restart left every WebSocket on the old slot's socket for the drain (as redeploy counted them).
    assert all(after >= CLIENTS for _, after in found["reload_kept"]), found["reload_kept"]
    # Once per redeploy, with the drain's 1012.
    assert found["ws_close_codes"] == {"1012": CLIENTS * REDEPLOYS}, found["odd_events"]
    assert all(w["spread_s"] >= 0.5 * DRAIN_TIMEOUT for w in found["windows"]), found["windows"]
    offsets = found["close_offsets_s"]
    # None before the drain began, none long after its window.
    assert 0 <= offsets["min"] and offsets["max"] <= DRAIN_TIMEOUT + 1, offsets


def test_caddys_reload_closes_every_websocket_before_the_drain() -> None:
    """The limit, measured: every close at the reload (1001 or none), none left for the drain, every client
    back on the new slot; the only failed requests are 502s at the reload (0-4 per reload here, one per
    connection with a request out)."""
    found = measure("caddy")
    closes = [e for e in found["odd_events"] if "close_code" in e]
    assert len(closes) == found["ws_closes"] == CLIENTS * REDEPLOYS
    assert all(e["close_code"] in (1001, None) and at_the_reload(e) for e in closes), closes
    assert all(before >= CLIENTS and after == 0 for before, after in found["reload_kept"]), found["reload_kept"]
    failed = [e for e in found["odd_events"] if "http_failed" in e]
    assert all(e["http_failed"] == "502" and at_the_reload(e) for e in failed), failed
