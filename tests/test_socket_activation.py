"""Socket activation (issue 16): the socket unit and the service unit agree, and what cannot is refused.

The e2e proof that requests wait instead of failing during a restart is
tests/e2e/test_socket_activation.py; this is the files' side of it.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.plan.model import INHERITED_SOCKET_SERVERS, INHERITED_UNIX_SOCKET_SERVERS, SERVERS
from tests import settings as test_settings
from tests.parsers import systemd_unit

ROOT = Path(__file__).resolve().parent.parent


def dk(**values: Any) -> dict[str, Any]:
    return {**test_settings.DEPLOYKIT, **values}


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for _section, key, value in systemd_unit(text):
        found.setdefault(key, []).append(value)
    return found


def test_granian_is_the_one_server_that_cannot_take_an_inherited_socket() -> None:
    # granian 2.8's command line binds --host/--port or --uds itself: no --fd, no LISTEN_FDS.
    assert set(SERVERS) - set(INHERITED_SOCKET_SERVERS) == {"granian"}


def test_daphne_takes_an_inherited_socket_as_tcp_only() -> None:
    # daphne's --fd is twisted's "fd:fileno=N" endpoint, whose domain defaults to INET.
    assert set(INHERITED_SOCKET_SERVERS) - set(INHERITED_UNIX_SOCKET_SERVERS) == {"daphne"}
    with override_settings(DEPLOYKIT=dk(SERVER="daphne", FD=3)), pytest.raises(SpecError) as caught:
        build_plan()
    assert "daphne cannot serve a unix socket" in str(caught.value) and "BIND" in str(caught.value)


def test_readme_names_the_servers_that_cannot_take_an_inherited_socket() -> None:
    readme = (ROOT / "README.md").read_text()
    [cannot] = sorted(set(SERVERS) - set(INHERITED_SOCKET_SERVERS))
    [tcp_only] = sorted(set(INHERITED_SOCKET_SERVERS) - set(INHERITED_UNIX_SOCKET_SERVERS))
    sentence = f"Socket activation needs a server that takes an inherited socket: not {cannot}, and {tcp_only} "
    assert sentence + "on TCP only" in readme


@pytest.mark.parametrize("fd", [0, 4])
def test_systemd_passes_the_socket_as_fd_3_and_another_fd_is_refused(fd: int) -> None:
    with override_settings(DEPLOYKIT=dk(FD=fd)), pytest.raises(SpecError) as caught:
        build_plan()
    assert caught.value.setting == 'DEPLOYKIT["FD"]'
    assert "fd 3" in str(caught.value)


def test_supervisor_keeps_fd_0() -> None:
    with override_settings(DEPLOYKIT=dk(PROCESS_MANAGER="supervisor", SERVER="daphne", BIND="127.0.0.1:8000")):
        assert build_plan().server.listen.fd == 0


def test_the_socket_unit_without_socket_activation_is_refused() -> None:
    # Without FD the service binds the same path itself: the socket unit would fight it for it.
    with override_settings(DEPLOYKIT=dk()), pytest.raises(CommandError) as caught:
        call_command("deployconfig", "systemd-socket", stdout=StringIO(), stderr=StringIO())
    assert "--fd 3" in str(caught.value) and "binds" in str(caught.value)


def test_granian_socket_activation_is_refused_by_name() -> None:
    with override_settings(DEPLOYKIT=dk(SERVER="granian", FD=3)), pytest.raises(CommandError) as caught:
        call_command("deployconfig", "systemd-socket", stdout=StringIO(), stderr=StringIO())
    assert "granian cannot take an inherited socket" in str(caught.value)
    assert "uvicorn" in str(caught.value)  # the servers that can


def render(target: str, **values: Any) -> str:
    out = StringIO()
    with override_settings(DEPLOYKIT=dk(**values)):
        call_command("deployconfig", target, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_socket_activated_restart_is_not_held_up_by_the_drain() -> None:
    # The socket keeps what arrives during a restart for the next server: a drain first would answer those
    # handshakes 403 for up to DRAIN_TIMEOUT, with no other server to take them. A self-binding unit keeps it
    # (another host or slot takes the load while it drains).
    activated = directives(render("systemd", FD=3))
    assert "ExecStop" not in activated, activated.get("ExecStop")
    assert activated["Environment"]  # the drain file is still named: `python -m deploykit.drain start` by hand
    assert any("DEPLOYKIT_SERVER_DRAIN_FILE=" in e for e in activated["Environment"])
    binds_itself = directives(render("systemd"))
    [stop] = binds_itself["ExecStop"]
    assert "-m deploykit.drain start --wait" in stop


def upstream_servers(conf: str, side: str) -> list[str]:
    [block] = re.findall(rf"^upstream \w+_{side} {{(.*?)^}}", conf, flags=re.M | re.S)
    return [line.strip() for line in block.splitlines() if line.strip().startswith("server ")]


@pytest.mark.parametrize(
    ("values", "entries"),
    [
        ({"WORKERS": 1}, 2),
        ({"FD": 3, "WORKERS": 2}, 3),
        ({"WORKERS": 8}, 4),
        ({"SERVER": "daphne", "BIND": "127.0.0.1:8000"}, 2),
        # supervisor's one socket, shared by every process.
        ({"PROCESS_MANAGER": "supervisor", "SERVER": "daphne", "BIND": "127.0.0.1:8000", "PROCESSES": 2}, 3),
    ],
)
def test_nginx_tries_a_lone_server_again(values: dict[str, Any], entries: int) -> None:
    # A stopping server closes, unanswered, a connection it had accepted but not read (uvicorn's shutdown, daphne
    # #177); nginx passes the request on (proxy_next_upstream error, the default) only to another entry, and a
    # lone server has none. Repeated, the retry waits in the socket's queue for the next server, or meets the
    # next worker that is stopping too: one more entry than the workers sharing the socket, at most 4.
    conf = render("nginx", **values)
    servers = upstream_servers(conf, "asgi")
    assert len(servers) == entries and len(set(servers)) == 1, servers
    # Neither entry is ever taken out: with max_fails=1 (the default) two resets would make nginx answer
    # 502 "no live upstreams" for fail_timeout, without trying the server that is back.
    assert servers[0].endswith(" max_fails=0;"), servers


def test_nginx_leaves_several_servers_as_they_are() -> None:
    conf = render("nginx", UPSTREAM=["10.0.0.1:8000", "10.0.0.2:8000"])
    servers = upstream_servers(conf, "asgi")
    assert servers == ["server 10.0.0.1:8000;", "server 10.0.0.2:8000;"]


def test_the_split_wsgi_upstream_is_tried_twice_too() -> None:
    conf = render("nginx", WSGI_SERVER="gunicorn", WSGI_WORKERS=2)
    servers = upstream_servers(conf, "wsgi")
    assert len(servers) == 3 and len(set(servers)) == 1 and servers[0].endswith(" max_fails=0;"), servers
