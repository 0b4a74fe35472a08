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

from bench.redeploy import SlotSettings, SlotStack, run_procedure, slot_stack
from bench.redeploy_report import table
from tests.conftest import require_tool
from tests.e2e.redeploys import assert_closes_spread_over_the_window, assert_no_request_failed_and_no_message_lost

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-redeploy")]

CLIENTS = 100
REDEPLOYS = 2
DRAIN_TIMEOUT = 4


@pytest.fixture(scope="module")
def stack() -> Iterator[SlotStack]:
    for tool in ("nginx", "redis-server", "supervisord", "supervisorctl"):
        require_tool(tool)
    # One worker per slot: each start is a Django start-up, the bulk of the test's time.
    with slot_stack(SlotSettings(DRAIN_TIMEOUT, graceful_timeout=5, workers=1)) as running:
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
    assert_no_request_failed_and_no_message_lost(results["slots"], clients=CLIENTS, redeploys=REDEPLOYS)


def test_redeploy_with_slots_spreads_the_reconnects_over_the_drain_window(
    results: dict[str, dict[str, object]],
) -> None:
    assert_closes_spread_over_the_window(results["slots"], drain_timeout=DRAIN_TIMEOUT)


def test_the_plain_restart_baseline_fails_where_the_slots_do_not(results: dict[str, dict[str, object]]) -> None:
    """Today's procedure, measured by the same load: its failures show the load sees what it must."""
    restart = results["restart"]
    assert restart["redeploys"] == REDEPLOYS
    assert restart["ws_closes"] >= CLIENTS * REDEPLOYS  # type: ignore[operator]
    # nginx answers 502 while the one instance restarts.
    assert restart["http_failed"] > 0, restart  # type: ignore[operator]
