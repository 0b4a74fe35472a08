"""Every class of bad input is refused where the plan is built, naming the setting and showing the value.

A refused value never reaches a file: ``build_plan`` raises SpecError,
``runasgi`` and ``deployconfig`` turn it into a CommandError and write nothing.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.exceptions import shown as display
from deploykit.plan import build_plan
from tests import settings as test_settings

LONG_SOCKET = "/run/" + "s" * 98 + ".sock"  # 108 bytes: one past the kernel's limit
assert len(LONG_SOCKET) == v.MAX_SOCKET_PATH + 1

#: (class of bad input, DEPLOYKIT key, value, name in the error)
BAD: list[tuple[str, str, Any, str]] = [
    ("line break", "SERVER_NAMES", ["a.com\n location /leak { alias /etc/; }"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("trailing newline", "SOCKET", "/run/x.sock\n", 'DEPLOYKIT["SOCKET"]'),
    ("trailing newline", "USER", "www\n", 'DEPLOYKIT["USER"]'),
    ("carriage return", "WORKING_DIRECTORY", "/srv/a\rExecStartPre=/bin/sh", 'DEPLOYKIT["WORKING_DIRECTORY"]'),
    ("unicode line separator", "SERVER_NAMES", ["a.com\u2028b"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("line break in env value", "ENVIRONMENT", {"A": "x\nExecStartPre=/bin/sh"}, "DEPLOYKIT[\"ENVIRONMENT\"]['A']"),
    ("NEL in env value", "ENVIRONMENT", {"A": "x\x85y"}, "DEPLOYKIT[\"ENVIRONMENT\"]['A']"),
    ("semicolon", "SERVER_NAMES", ["a.com;"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("semicolon", "WORKING_DIRECTORY", "/srv/a;b", 'DEPLOYKIT["WORKING_DIRECTORY"]'),
    ("space semicolon", "WORKING_DIRECTORY", "/srv/a ;c", 'DEPLOYKIT["WORKING_DIRECTORY"]'),
    ("braces", "SERVER_NAMES", ["a{b}.com"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("braces", "VIRTUALENV", "/srv/{x}", 'DEPLOYKIT["VIRTUALENV"]'),
    ("leading #", "SERVER_NAMES", ["#a.com"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("leading #", "GROUP", "#g", 'DEPLOYKIT["GROUP"]'),
    ("double quote", "SOCKET", '/run/"x.sock', 'DEPLOYKIT["SOCKET"]'),
    ("single quote", "ACME_WEBROOT", "/var/www/'x", 'DEPLOYKIT["ACME_WEBROOT"]'),
    ("trailing backslash", "ENV_FILE", "/etc/x\\", 'DEPLOYKIT["ENV_FILE"]'),
    ("dollar", "SERVER_NAMES", ["$host"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("dollar", "WORKING_DIRECTORY", "/srv/$HOME", 'DEPLOYKIT["WORKING_DIRECTORY"]'),
    ("percent", "RUNTIME_DIRECTORY", "/run/%n", 'DEPLOYKIT["RUNTIME_DIRECTORY"]'),
    ("percent not an escape", "REDIS_URL", "redis://h:6379/%(ENV_X)s", 'DEPLOYKIT["REDIS_URL"]'),
    ("hash in URL", "REDIS_URL", "redis://h:6379/0#x", 'DEPLOYKIT["REDIS_URL"]'),
    ("${", "ACME_WEBROOT", "/var/${X}", 'DEPLOYKIT["ACME_WEBROOT"]'),
    ("whitespace in socket path", "SOCKET", "/run/a b.sock", 'DEPLOYKIT["SOCKET"]'),
    ("colon in socket path", "SOCKET", "/run/a:b.sock", 'DEPLOYKIT["SOCKET"]'),
    ("relative path", "SOCKET", "run/x.sock", 'DEPLOYKIT["SOCKET"]'),
    ("relative path", "VIRTUALENV", "venv", 'DEPLOYKIT["VIRTUALENV"]'),
    ("dot-dot", "ENV_FILE", "/etc/../root/x", 'DEPLOYKIT["ENV_FILE"]'),
    ("NUL", "SOCKET", "/run/x\x00.sock", 'DEPLOYKIT["SOCKET"]'),
    ("NUL", "ENVIRONMENT", {"A": "x\x00y"}, "DEPLOYKIT[\"ENVIRONMENT\"]['A']"),
    ("socket path too long", "SOCKET", LONG_SOCKET, 'DEPLOYKIT["SOCKET"]'),
    ("path too long", "WORKING_DIRECTORY", "/" + "a" * v.MAX_PATH, 'DEPLOYKIT["WORKING_DIRECTORY"]'),
    ("empty server_name", "SERVER_NAMES", [], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("empty server_name", "SERVER_NAMES", [""], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("port 0", "HTTP_PORT", 0, 'DEPLOYKIT["HTTP_PORT"]'),
    ("port too high", "HTTPS_PORT", 65536, 'DEPLOYKIT["HTTPS_PORT"]'),
    ("port too high", "BIND", "127.0.0.1:70000", 'DEPLOYKIT["BIND"]'),
    ("negative", "GRACEFUL_TIMEOUT", -1, 'DEPLOYKIT["GRACEFUL_TIMEOUT"]'),
    ("bool for int", "WORKERS", True, 'DEPLOYKIT["WORKERS"]'),
    ("bool for int", "HTTP_PORT", True, 'DEPLOYKIT["HTTP_PORT"]'),
    ("str for int", "PROCESSES", "2", 'DEPLOYKIT["PROCESSES"]'),
    ("float for int", "KEEPALIVE_TIMEOUT", 5.0, 'DEPLOYKIT["KEEPALIVE_TIMEOUT"]'),
    ("str for bool", "PROXY_HEADERS", "yes", 'DEPLOYKIT["PROXY_HEADERS"]'),
    ("str for list", "SERVER_NAMES", "a.com", 'DEPLOYKIT["SERVER_NAMES"]'),
    ("list for dict", "ENVIRONMENT", ["A=b"], 'DEPLOYKIT["ENVIRONMENT"]'),
    ("int for str", "USER", 1000, 'DEPLOYKIT["USER"]'),
    ("bad env name", "ENVIRONMENT", {"A B": "x"}, "DEPLOYKIT[\"ENVIRONMENT\"]['A B']"),
    ("IPv6 zone (free text)", "FORWARDED_ALLOW_IPS", ["fe80::1%eth0;x"], 'DEPLOYKIT["FORWARDED_ALLOW_IPS"]'),
    ("IPv6 zone (free text)", "SERVER_NAMES", ["[fe80::1%x{}]"], 'DEPLOYKIT["SERVER_NAMES"]'),
    ("IPv6 zone (free text)", "BIND", "[fe80::1%lo]:80", 'DEPLOYKIT["BIND"]'),
    ("unknown choice", "SERVER", "gunicorn;rm", 'DEPLOYKIT["SERVER"]'),
    ("a name, not an address", "TRUSTED_PROXIES", ["cloudflare"], 'DEPLOYKIT["TRUSTED_PROXIES"]'),
    ("every client", "TRUSTED_PROXIES", ["*"], 'DEPLOYKIT["TRUSTED_PROXIES"]'),
    ("IPv6 zone (free text)", "TRUSTED_PROXIES", ["fe80::1%eth0"], 'DEPLOYKIT["TRUSTED_PROXIES"]'),
    ("int for list", "TRUSTED_PROXIES", 10, 'DEPLOYKIT["TRUSTED_PROXIES"]'),
]


def dk(**values: object) -> dict[str, object]:
    return {**test_settings.DEPLOYKIT, **values}


def _ids() -> list[str]:
    return [f"{cls}-{key}" for cls, key, _, _ in BAD]


@pytest.mark.parametrize(("cls", "key", "value", "label"), BAD, ids=_ids())
def test_build_plan_refuses(cls: str, key: str, value: Any, label: str) -> None:
    with override_settings(DEPLOYKIT=dk(**{key: value})), pytest.raises(SpecError) as caught:
        build_plan()
    assert caught.value.setting == label
    # The message names the setting and shows the offending value as Python would write it.
    assert label in str(caught.value)
    shown = repr(value[0] if isinstance(value, list) and value and key != "ENVIRONMENT" else value)
    if key == "ENVIRONMENT" and isinstance(value, dict):
        shown = repr(next(iter(value.values()))) if "A B" not in value else repr("A B")
    # Environment values and long values are shown redacted or cut (issue 14 item 12).
    message = str(caught.value)
    assert shown in message or repr(value) in message or display(label, caught.value.value) in message


@pytest.mark.parametrize(("cls", "key", "value", "label"), BAD, ids=_ids())
def test_runasgi_refuses(cls: str, key: str, value: Any, label: str) -> None:
    out = StringIO()
    with override_settings(DEPLOYKIT=dk(**{key: value})), pytest.raises(CommandError) as caught:
        call_command("runasgi", "--print-command", stdout=out)
    assert label in str(caught.value)
    assert out.getvalue() == ""


@pytest.mark.parametrize("target", ["nginx", "systemd", "supervisor", "env", "apache", "caddy", "all"])
@pytest.mark.parametrize(
    ("key", "value"),
    [("SERVER_NAMES", ["a.com;\n}"]), ("WORKING_DIRECTORY", "/srv/%n"), ("ENVIRONMENT", {"X": "a\nb"})],
)
def test_deployconfig_writes_nothing(tmp_path: Path, target: str, key: str, value: Any) -> None:
    output = tmp_path / "out"
    with override_settings(DEPLOYKIT=dk(**{key: value})), pytest.raises(CommandError) as caught:
        call_command("deployconfig", target, "-o", str(output), stdout=StringIO(), stderr=StringIO())
    assert key in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--uds", "/run/a b.sock"), ("--uds", "relative.sock"), ("--domain", "a.com;"), ("--bind", "0.0.0.0:99999")],
)
def test_flags_are_named_in_errors(flag: str, value: str) -> None:
    # --domain is deployconfig's (runasgi takes only what changes the server's argv).
    command = ["deployconfig", "nginx"] if flag == "--domain" else ["runasgi", "--print-command"]
    with pytest.raises(CommandError) as caught:
        call_command(*command, f"{flag}={value}", stdout=StringIO(), stderr=StringIO())
    assert str(caught.value).startswith(f"{flag} = {value!r}: ")


@pytest.mark.parametrize(
    ("header", "label"),
    [
        (("HTTP_X_FORWARDED_PROTO;", "https"), "SECURE_PROXY_SSL_HEADER[0]"),
        (("HTTP_X", "https\n"), "SECURE_PROXY_SSL_HEADER[1]"),
    ],
)
def test_proxy_ssl_header_is_validated(header: tuple[str, str], label: str) -> None:
    with override_settings(SECURE_PROXY_SSL_HEADER=header), pytest.raises(SpecError) as caught:
        build_plan()
    assert caught.value.setting == label


@override_settings(DEPLOYKIT={"MAX_BODY_SIZE": "10M"})
def test_upload_limit_of_wrong_type_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"MAX_BODY_SIZE.. = '10M'"):
        build_plan()


def test_supervisor_refuses_env_values_it_cannot_hold() -> None:
    settings = dk(PROCESS_MANAGER="supervisor", ENVIRONMENT={"A": 'it\'s "x"'})
    with override_settings(DEPLOYKIT=settings), pytest.raises(SpecError) as caught:
        build_plan()
    assert caught.value.setting == "DEPLOYKIT[\"ENVIRONMENT\"]['A']"
    # The same value is fine under systemd: the env file quotes it.
    with override_settings(DEPLOYKIT={**settings, "PROCESS_MANAGER": "systemd"}):
        assert build_plan().process_manager.environment == (("A", 'it\'s "x"'),)


@pytest.mark.parametrize(
    ("validator", "value", "expected"),
    [
        (v.hostname, "Example.COM", "example.com"),
        (v.hostname, "*.example.com", "*.example.com"),
        (v.hostname, "[::1]", "::1"),
        (v.absolute_path, "/srv/app/", "/srv/app"),
        (v.socket_path, "/run/" + "s" * 97 + ".sock", "/run/" + "s" * 97 + ".sock"),
        (v.redis_url, "redis://:p%40ss@h:6379/0", "redis://:p%40ss@h:6379/0"),
        (v.env_value, "tab\tand 'quotes' \"$x\" %n ;c #x \\", "tab\tand 'quotes' \"$x\" %n ;c #x \\"),
        (v.ip_or_network, "10.0.0.0/8", "10.0.0.0/8"),
    ],
)
def test_valid_values_pass(validator: Any, value: Any, expected: Any) -> None:
    assert validator(value, "X") == expected
