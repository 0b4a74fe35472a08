"""BACKLOG: one listen queue length for every place that calls listen() on the app's socket.

A server that takes an inherited socket calls listen() on it again with its own backlog, which replaces the
socket unit's: hypercorn's 100 filled during a 3 s restart under load and the next connections to the unix
socket failed with EAGAIN (nginx: 502), tests/e2e/test_socket_activation.py through nginx, 2026-11-30.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.plan.model import SERVERS
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from tests.parsers import systemd_unit
from tests.test_recycling import REDIS, after, dk, plan_of

#: The servers whose command line sets the listen backlog (daphne's -b/-p/-u and --fd have no way to).
BACKLOG_SERVERS = ("gunicorn", "granian", "hypercorn", "uvicorn")


def render(target: str, **values: Any) -> str:
    out = StringIO()
    with override_settings(DEPLOYKIT=dk(**values), CHANNEL_LAYERS=REDIS):
        call_command("deployconfig", target, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_default_is_the_kernels_own_cap() -> None:
    # net.core.somaxconn since Linux 5.4, and systemd's default Backlog=: above every server's own default
    # (hypercorn 100, granian 1024, uvicorn and gunicorn 2048, twisted's 50 for daphne).
    assert plan_of().server.backlog == 4096


@pytest.mark.parametrize("server", BACKLOG_SERVERS)
def test_every_server_that_can_is_given_it(server: str) -> None:
    assert after(get_backend(plan_of(SERVER=server, BACKLOG=1000)).argv(), "--backlog") == "1000"


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_the_wsgi_side_too(server: str) -> None:
    plan = plan_of(WSGI_SERVER=server, BACKLOG=1000)
    assert after(get_wsgi_backend(plan).argv(), "--backlog") == "1000"


def test_the_set_of_servers_is_complete() -> None:
    assert set(SERVERS) - set(BACKLOG_SERVERS) == {"daphne"}
    assert "--backlog" not in get_backend(plan_of(SERVER="daphne", BIND="127.0.0.1:8000")).argv()


def test_the_socket_unit_and_supervisors_socket_hold_the_same_queue() -> None:
    unit = {key: value for _s, key, value in systemd_unit(render("systemd-socket", FD=3, BACKLOG=1000))}
    assert unit["Backlog"] == "1000"
    supervisor = render(
        "supervisor", PROCESS_MANAGER="supervisor", SERVER="daphne", BIND="127.0.0.1:8000", BACKLOG=1000
    )
    assert "socket_backlog=1000" in supervisor.splitlines()


def test_gunicorns_config_file_says_it() -> None:
    assert "backlog = 1000" in render("gunicorn", SERVER="gunicorn", BACKLOG=1000).splitlines()


@pytest.mark.parametrize("value", [0, -1, 65536, "4096", True, 1.5])
def test_bad_values_are_refused_where_read(value: object) -> None:
    with pytest.raises(SpecError) as caught:
        plan_of(BACKLOG=value)
    assert caught.value.setting == 'DEPLOYKIT["BACKLOG"]'
