"""``manage.py redeploy`` (issue 16): the procedure's order, and what it leaves when a step fails."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit.plan import Bind, Plan, build_plan
from deploykit.redeploy import (
    Redeploy,
    RedeployError,
    default_commands,
    drain_files,
    with_overrides,
)
from deploykit.slotprobes import open_connections
from deploykit.targets.upstream import live_slot, upstream_content
from tests import settings as test_settings


def settings(tmp_path: Path, **values: Any) -> dict[str, Any]:
    return {
        "DEPLOYKIT": {
            **test_settings.DEPLOYKIT,
            "VIRTUALENV": sys.prefix,
            "HEALTH_PATH": "/-/ready",
            "SLOTS": ("blue", "green"),
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "UPSTREAM_FILE": str(tmp_path / "upstream.conf"),
            # Short: the slots' socket paths must fit the kernel's 107 bytes (tmp_path under xdist does not).
            "RUNTIME_DIRECTORY": f"/tmp/dk-redeploy-{abs(hash(str(tmp_path))) % 10**8}/run",
            "PROCESS_MANAGER": "supervisor",
            **values,
        },
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": None}]},
            }
        },
    }


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    with override_settings(**settings(tmp_path)):
        plan = build_plan()
    assert plan.upstream_file is not None
    Path(plan.upstream_file).write_text(upstream_content(plan, "blue"))
    return plan


class Fake:
    """The outside world: records every command; fails the ones named; a readiness answer per address."""

    def __init__(self, fail: Sequence[str] = (), ready: str = "200") -> None:
        self.ran: list[str] = []
        self.fail = fail
        self.ready = ready
        self.now = 0.0

    def run(self, argv: Sequence[str]) -> str:
        line = " ".join(argv)
        self.ran.append(line)
        if any(f in line for f in self.fail):
            raise RedeployError(f"{line} failed")
        return ""

    def procedure(self, plan: Plan, **kwargs: Any) -> Redeploy:
        def sleep(seconds: float) -> None:
            self.now += seconds

        # The slots' runtime directories, where their drain files go (systemd or INSTALL.md makes them).
        for slot in plan.slots:
            for path in drain_files(slot):
                Path(path).parent.mkdir(parents=True, exist_ok=True)

        return Redeploy(
            plan,
            with_overrides(default_commands(plan), proxy_test="proxy-test", proxy_reload="proxy-reload"),
            ready_timeout=5,
            run=self.run,
            say=lambda line: None,
            probe=lambda bind, path: self.ready,
            connections=lambda binds: 0,
            clock=lambda: self.now,
            sleep=sleep,
            **kwargs,
        )


def test_a_redeploy_starts_the_other_slot_switches_then_stops_the_old(plan: Plan) -> None:
    fake = Fake()
    assert fake.procedure(plan).execute().name == "green"
    assert fake.ran == [
        "supervisorctl restart example-green:*",
        "proxy-test",
        "proxy-reload",
        "supervisorctl stop example-blue:*",
    ]
    assert live_slot(Path(plan.upstream_file or "").read_text()) == "green"
    # The old slot drains (its drain file, which its servers watch); the new one's stale file was removed.
    assert [Path(f).exists() for f in drain_files(plan.slot("blue"))] == [True]
    assert [Path(f).exists() for f in drain_files(plan.slot("green"))] == [False]
    # And back.
    fake.ran.clear()
    assert fake.procedure(plan).execute().name == "blue"
    assert fake.ran[0] == "supervisorctl restart example-blue:*"
    assert [Path(f).exists() for f in drain_files(plan.slot("blue"))] == [False]


def test_a_redeploy_says_how_many_connections_the_proxys_reload_left_to_the_drain(plan: Plan) -> None:
    """Caddy 2.6 closes every WebSocket it tunnels when it reloads, before the drain (tests/e2e/
    test_redeploy_proxies.py): the command shows what the reload left on the old slot's sockets."""
    fake = Fake()
    said: list[str] = []
    counts = iter([7, 0])
    procedure = fake.procedure(plan)
    procedure.say = said.append
    procedure.connections = lambda binds: next(counts, 0)
    procedure.execute()
    assert "slot blue: 7 connection(s) open before the proxy's reload, 0 after it settled" in said
    assert procedure.reload_kept == (7, 0)


def test_a_slot_that_never_gets_ready_is_stopped_and_nothing_switches(plan: Plan) -> None:
    fake = Fake(ready="503")
    with pytest.raises(RedeployError, match=r"slot green was not ready after 5s: GET /-/ready on unix:.* answered 503"):
        fake.procedure(plan).execute()
    assert fake.ran == ["supervisorctl restart example-green:*", "supervisorctl stop example-green:*"]
    assert live_slot(Path(plan.upstream_file or "").read_text()) == "blue"


@pytest.mark.parametrize("failing", ["proxy-test", "proxy-reload"])
def test_a_refused_upstream_file_is_put_back_and_the_new_slot_stopped(plan: Plan, failing: str) -> None:
    before = Path(plan.upstream_file or "").read_text()
    fake = Fake(fail=[failing])
    with pytest.raises(RedeployError, match="the live slot and the proxy are as they were"):
        fake.procedure(plan).execute()
    assert Path(plan.upstream_file or "").read_text() == before
    assert fake.ran[-1] == "supervisorctl stop example-green:*"
    assert "supervisorctl stop example-blue:*" not in fake.ran


def test_a_failed_start_stops_the_new_slot_and_switches_nothing(plan: Plan) -> None:
    fake = Fake(fail=["restart"])
    with pytest.raises(RedeployError, match=r"starting slot green failed .* the live slot and the proxy are as they"):
        fake.procedure(plan).execute()
    assert fake.ran == ["supervisorctl restart example-green:*", "supervisorctl stop example-green:*"]
    assert live_slot(Path(plan.upstream_file or "").read_text()) == "blue"


def test_a_failed_stop_of_the_old_slot_says_the_new_one_is_live(plan: Plan) -> None:
    fake = Fake(fail=["stop example-blue"])
    with pytest.raises(RedeployError, match=r"slot green is live .* slot blue is drained but stopping it failed"):
        fake.procedure(plan).execute()
    assert live_slot(Path(plan.upstream_file or "").read_text()) == "green"


def test_a_missing_upstream_file_is_refused_before_anything_runs(plan: Plan) -> None:
    Path(plan.upstream_file or "").unlink()
    fake = Fake()
    with pytest.raises(RedeployError, match="does not exist: install it first"):
        fake.procedure(plan).execute()
    assert fake.ran == []


def test_systemd_commands_name_both_units_of_a_split_slot(tmp_path: Path) -> None:
    with override_settings(
        **settings(tmp_path, PROCESS_MANAGER="systemd", WSGI_SERVER="gunicorn"),
        WSGI_APPLICATION="testproject.wsgi.application",
    ):
        plan = build_plan()
    Path(plan.upstream_file or "").write_text(upstream_content(plan, "green"))
    fake = Fake()
    fake.procedure(plan).execute()
    assert fake.ran[0] == "systemctl restart example-blue.service example-blue-http.service"
    assert fake.ran[-1] == "systemctl stop example-green.service example-green-http.service"


def test_dry_run_prints_the_steps_and_runs_nothing(plan: Plan, tmp_path: Path) -> None:
    out = StringIO()
    with override_settings(**settings(tmp_path)):
        call_command("redeploy", "--dry-run", "--manager-command", "supervisorctl -c /etc/sv.conf", stdout=out)
    text = out.getvalue()
    assert "1. live slot: blue" in text
    assert "start slot green: supervisorctl -c /etc/sv.conf restart 'example-green:*'" in text
    assert "test the proxy: nginx -t" in text and "reload the proxy: nginx -s reload" in text
    assert "stop slot blue: supervisorctl -c /etc/sv.conf stop 'example-blue:*'" in text
    assert "drain slot blue: create /tmp/dk-redeploy-" in text and "-blue/example.drain" in text


def test_redeploy_without_slots_is_refused(tmp_path: Path) -> None:
    with override_settings(**settings(tmp_path, SLOTS=None)), pytest.raises(CommandError, match="SLOTS"):
        call_command("redeploy", "--dry-run", stdout=StringIO())


def test_open_connections_counts_accepted_unix_connections(tmp_path: Path) -> None:
    import socket

    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        assert open_connections([Bind("unix", path=path)]) == 0
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            accepted, _ = server.accept()
            with accepted:
                assert open_connections([Bind("unix", path=path)]) == 1  # the accepted end carries the path
