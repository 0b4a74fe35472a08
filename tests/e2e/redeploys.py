"""What a redeploy with two slots must show under bench.slotload's load (issue 16), whichever project runs.

Shared by tests/e2e/test_redeploy.py (testproject) and tests/e2e/test_redeploy_projects.py (tests/projects/):
``slots`` is bench.redeploy_report.summarize's figures for the "slots" procedure.
"""

from __future__ import annotations

from typing import Any


def assert_no_request_failed_and_no_message_lost(slots: dict[str, Any], *, clients: int, redeploys: int) -> None:
    assert slots["redeploys"] == redeploys
    assert slots["http_failed"] == 0, (slots["http_non_2xx"], slots["http_errors"])
    assert slots["http_ok"] > 0
    # Every client was closed once per redeploy, and came back.
    assert slots["ws_closes"] == clients * redeploys
    assert slots["ws_reconnected"] == slots["ws_closes"]
    assert slots["ws_connected_at_end"] == clients
    assert slots["messages_lost"] == 0 and slots["messages_unexpected"] == 0
    assert slots["ws_close_codes"] == {"1012": clients * redeploys}


def assert_closes_spread_over_the_window(slots: dict[str, Any], *, drain_timeout: float) -> None:
    windows = slots["windows"]
    # Not a thundering herd: in each redeploy the closes (and so the reconnects) spread over at least half the
    # drain window. Stopping a server closes them as fast as it can (0.06-0.66 s for 100 on this machine).
    assert all(w["spread_s"] >= 0.5 * drain_timeout for w in windows), windows
    offsets = slots["close_offsets_s"]
    assert offsets["max"] <= drain_timeout + 1, offsets
