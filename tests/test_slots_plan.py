"""Two slots of the app (issue 16): the plan's slots, each on its own socket and runtime directory."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from tests import settings as test_settings


def plan_with(**values: Any) -> Any:
    settings = {
        "DEPLOYKIT": {**test_settings.DEPLOYKIT, "HEALTH_PATH": "/-/ready", "SLOTS": ("blue", "green"), **values}
    }
    if "WSGI_SERVER" in values:
        settings["WSGI_APPLICATION"] = "testproject.wsgi.application"
    with override_settings(**settings):
        return build_plan()


def test_slots_are_off_by_default() -> None:
    with override_settings(DEPLOYKIT=test_settings.DEPLOYKIT):
        assert build_plan().slots == ()


def test_each_slot_has_its_own_socket_runtime_directory_and_service() -> None:
    plan = plan_with()
    blue, green = plan.slots
    assert (blue.name, green.name) == ("blue", "green")
    assert blue.service == "example-blue" and green.service == "example-green"
    assert blue.runtime_directory == "/run/example-blue"
    assert [str(a) for a in blue.server.addresses] == ["unix:/run/example-blue/example-blue.sock"]
    assert [str(a) for a in green.server.addresses] == ["unix:/run/example-green/example-green.sock"]
    slot_plan = plan.for_slot("green")
    assert slot_plan.process_manager.name == "example-green"
    assert slot_plan.process_manager.runtime_directory == "/run/example-green"
    assert [str(b) for b in slot_plan.site.upstream] == ["unix:/run/example-green/example-green.sock"]
    # Everything else is the plan's own.
    assert slot_plan.process_manager.user == "example"
    assert slot_plan.server.backend == plan.server.backend


def test_tcp_slots_take_ports_after_each_other() -> None:
    plan = plan_with(BIND="127.0.0.1:8000", PROCESSES=2, WSGI_SERVER="gunicorn")
    blue, green = plan.slots
    assert [a.port for a in blue.server.addresses] == [8000, 8001]
    assert blue.wsgi is not None and blue.wsgi.address.port == 8002
    assert [a.port for a in green.server.addresses] == [8003, 8004]
    assert green.wsgi is not None and green.wsgi.address.port == 8005
    assert green.wsgi.name == "example-green-http"


def test_split_slots_have_their_own_wsgi_socket() -> None:
    plan = plan_with(WSGI_SERVER="gunicorn")
    green = plan.slots[1]
    assert green.wsgi is not None
    assert str(green.wsgi.address) == "unix:/run/example-green-http/example-green-http.sock"
    assert green.wsgi.runtime_directory == "/run/example-green-http"


def test_the_upstream_file_follows_the_proxy() -> None:
    assert plan_with().upstream_file == "/etc/nginx/example-upstream.conf"
    assert plan_with(PROXY="apache").upstream_file == "/etc/apache2/example-upstream.conf"
    assert plan_with(PROXY="caddy").upstream_file == "/etc/caddy/example-upstream.caddy"
    assert plan_with(UPSTREAM_FILE="/srv/x/up.conf").upstream_file == "/srv/x/up.conf"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SLOTS": ("blue",)}, "two different names"),
        ({"SLOTS": ("blue", "blue")}, "two different names"),
        ({"SLOTS": "blue,green"}, "two different names"),
        ({"SLOTS": ("blue", "Green!")}, "must match"),
        ({"HEALTH_PATH": None}, "HEALTH_PATH"),
        ({"UPSTREAM_FILE": "relative/up.conf"}, "absolute"),
    ],
)
def test_invalid_slots_are_refused_with_the_setting_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        plan_with(**values)
    assert "SLOTS" in str(info.value) or "UPSTREAM_FILE" in str(info.value)
