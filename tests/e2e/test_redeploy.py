"""Two slots and a switch under load (issue 16): real nginx, Redis, supervisord driving both slots, and the
real ``manage.py redeploy``, against today's plain ``supervisorctl restart`` of the live slot.

The load (bench.slotload) is HTTP keep-alive requests plus WebSocket chat clients that number every
message and check every reply, reconnecting after a close. Shortened for the suite (2 redeploys, 100
clients, a 3 s drain window); ``bench/run redeploy`` is the full run (10 redeploys, 500 clients).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bench.redeploy import SlotStack, run_procedure, slot_stack
from bench.redeploy_report import table
from tests.conftest import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-redeploy")]

CLIENTS = 100
REDEPLOYS = 2
DRAIN_TIMEOUT = 4


@pytest.fixture(scope="module")
def stack() -> Iterator[SlotStack]:
    for tool in ("nginx", "redis-server", "supervisord", "supervisorctl"):
        require_tool(tool)
    # One worker per slot: each start is a Django start-up, the bulk of the test's time.
    with slot_stack(drain_timeout=DRAIN_TIMEOUT, graceful_timeout=5, workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def results(stack: SlotStack) -> dict[str, dict[str, object]]:
    found = {}
    for procedure in ("slots", "restart"):
        found[procedure] = run_procedure(
            stack, procedure, redeploys=REDEPLOYS, clients=CLIENTS, http_connections=4, interval=0.5
        )
    print("\n" + table(list(found.values())))
    print(json.dumps({k: {"windows": v["windows"], "odd": v["odd_events"]} for k, v in found.items()}))
    return found


def test_redeploy_with_slots_fails_no_request_and_loses_no_message(results: dict[str, dict[str, object]]) -> None:
    slots = results["slots"]
    assert slots["redeploys"] == REDEPLOYS
    assert slots["http_failed"] == 0, (slots["http_non_2xx"], slots["http_errors"])
    assert slots["http_ok"] > 0  # type: ignore[operator]
    # Every client was closed once per redeploy, and came back.
    assert slots["ws_closes"] == CLIENTS * REDEPLOYS
    assert slots["ws_reconnected"] == slots["ws_closes"]
    assert slots["ws_connected_at_end"] == CLIENTS
    assert slots["messages_lost"] == 0 and slots["messages_unexpected"] == 0
    assert slots["ws_close_codes"] == {"1012": CLIENTS * REDEPLOYS}


def test_redeploy_with_slots_spreads_the_reconnects_over_the_drain_window(
    results: dict[str, dict[str, object]],
) -> None:
    windows = results["slots"]["windows"]
    # Not a thundering herd: in each redeploy the closes (and so the reconnects) spread over at least half the
    # drain window. Stopping a server closes them as fast as it can (0.06-0.66 s for 100 on this machine).
    assert all(w["spread_s"] >= 0.5 * DRAIN_TIMEOUT for w in windows), windows  # type: ignore[attr-defined]
    offsets = results["slots"]["close_offsets_s"]
    assert offsets["max"] <= DRAIN_TIMEOUT + 1, offsets  # type: ignore[index]


def test_the_plain_restart_baseline_fails_where_the_slots_do_not(results: dict[str, dict[str, object]]) -> None:
    """Today's procedure, measured by the same load: its failures show the load sees what it must."""
    restart = results["restart"]
    assert restart["redeploys"] == REDEPLOYS
    assert restart["ws_closes"] >= CLIENTS * REDEPLOYS  # type: ignore[operator]
    # nginx answers 502 while the one instance restarts.
    assert restart["http_failed"] > 0, restart  # type: ignore[operator]
