"""Split serving (issue 15) in the targets: the WSGI unit's network peers, the command-line option."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit.plan import build_plan
from deploykit.targets.systemd import Systemd
from tests import settings as test_settings

WSGI_APP = "testproject.wsgi.application"


def split(**values: Any) -> dict[str, Any]:
    return {
        "DEPLOYKIT": {**test_settings.DEPLOYKIT, "WSGI_SERVER": "gunicorn", **values},
        "WSGI_APPLICATION": WSGI_APP,
    }


def units(**values: Any) -> dict[str, str]:
    with override_settings(**split(**values)):
        plan = build_plan()
    return {f.name: f.content for f in Systemd(plan).files()}


def allow_line(unit: str) -> str | None:
    return next((line for line in unit.splitlines() if line.startswith("IPAddressAllow=")), None)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # A public WSGI bind admits its trusted proxies, like the ASGI side does on a public bind.
        ({"WSGI_BIND": "0.0.0.0:9000", "FORWARDED_ALLOW_IPS": "10.0.0.5"}, "IPAddressAllow=localhost 10.0.0.5"),
        # Trusting loopback only on a public bind: any host may be the proxy (no allow list at all).
        ({"WSGI_BIND": "0.0.0.0:9000"}, None),
        # A loopback WSGI bind: loopback only.
        ({"WSGI_BIND": "127.0.0.1:9000", "FORWARDED_ALLOW_IPS": "10.0.0.5"}, "IPAddressAllow=localhost"),
    ],
)
def test_the_wsgi_units_allow_list_follows_its_own_bind(values: dict[str, Any], expected: str | None) -> None:
    files = units(**values)
    assert allow_line(files["example-http.service"]) == expected
    # The ASGI side listens on its unix socket: loopback only, whatever the WSGI side binds.
    assert allow_line(files["example.service"]) == "IPAddressAllow=localhost"


def test_a_public_asgi_bind_does_not_open_a_loopback_wsgi_unit() -> None:
    files = units(BIND="0.0.0.0:8001", FORWARDED_ALLOW_IPS="10.0.0.5", WSGI_BIND="127.0.0.1:9000")
    assert allow_line(files["example.service"]) == "IPAddressAllow=localhost 10.0.0.5"
    assert allow_line(files["example-http.service"]) == "IPAddressAllow=localhost"


def test_an_explicit_allow_list_applies_to_both_units() -> None:
    files = units(WSGI_BIND="0.0.0.0:9000", IP_ADDRESS_ALLOW=["localhost", "10.0.0.9"])
    assert allow_line(files["example.service"]) == allow_line(files["example-http.service"])
    assert allow_line(files["example-http.service"]) == "IPAddressAllow=localhost 10.0.0.9"


def command(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    extra = {"skip_checks": True} if name == "runasgi" else {}
    call_command(name, *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


@override_settings(WSGI_APPLICATION=WSGI_APP)
@pytest.mark.parametrize("backend", ["granian", "gunicorn"])
def test_runasgi_takes_wsgi_server(backend: str) -> None:
    out, _ = command("runasgi", "--wsgi-server", backend, "--role", "http", "--print-command")
    assert f"-m {backend} " in out


@override_settings(WSGI_APPLICATION=WSGI_APP)
def test_deployconfig_takes_wsgi_server(tmp_path: Path) -> None:
    command("deployconfig", "systemd", "--wsgi-server", "granian", "-o", str(tmp_path))
    assert "-m granian --interface wsgi" in (tmp_path / "example-http.service").read_text()


@override_settings(WSGI_APPLICATION=WSGI_APP)
def test_wsgi_server_errors_name_the_flag() -> None:
    with pytest.raises(CommandError, match=r"--wsgi-server = 'granian': granian cannot take an inherited socket"):
        command("deployconfig", "systemd", "--wsgi-server", "granian", "--process-manager", "supervisor")
    with pytest.raises(CommandError, match=r"invalid choice: 'uwsgi'"):
        command("runasgi", "--wsgi-server", "uwsgi", "--print-command")
