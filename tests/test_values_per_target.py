"""Values the validators accepted and a target then broke on (issue 14 items 8-11).

Each is either refused where settings are read (naming the setting, nothing
written) or written so that the target's own parser reads it back exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.targets.compose import Compose
from deploykit.targets.kubernetes import Kubernetes
from deploykit.targets.supervisor import Supervisor, parse
from tests import settings as test_settings
from tests.conftest import require_tool

CONTAINERS = {"HEALTH_PATH": "/-/ready", "CONTAINERS": True, "IMAGE_TAG": "1.0"}


def dk(**values: object) -> dict[str, object]:
    return {**test_settings.DEPLOYKIT, **values}


def test_non_bmp_characters_round_trip_through_compose_and_kubernetes_yaml() -> None:
    # Go's YAML (kubectl) refuses "\ud83d\ude80": a JSON surrogate pair is not a YAML escape.
    with override_settings(DEPLOYKIT=dk(ENVIRONMENT={"X": "ok🚀"}, **CONTAINERS)):
        plan = build_plan()
    compose = yaml.safe_load(Compose(plan).render())
    assert compose["services"]["app"]["environment"]["X"] == "ok🚀"
    docs = [d for d in yaml.safe_load_all(Kubernetes(plan).render()) if d]
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config["data"]["X"] == "ok🚀"
    for text in (Compose(plan).render(), Kubernetes(plan).render()):
        assert "\\ud83d" not in text


def test_supervisor_here_is_refused_where_it_is_read(tmp_path: Path) -> None:
    # supervisor expands %(here)s before ConfigParser: %%(here)s became '%<dir>' and the file was refused.
    settings = dk(PROCESS_MANAGER="supervisor", ENVIRONMENT={"CONF": "%(here)s/x"})
    with override_settings(DEPLOYKIT=settings), pytest.raises(SpecError) as caught:
        build_plan()
    assert caught.value.setting == "DEPLOYKIT[\"ENVIRONMENT\"]['CONF']"
    # A lone % still round-trips.
    with override_settings(DEPLOYKIT=dk(PROCESS_MANAGER="supervisor", ENVIRONMENT={"CONF": "100%"})):
        plan = build_plan()
    [(_, _, environment), *_] = parse(Supervisor(plan).render(), tmp_path)
    assert environment["CONF"] == "100%"


@pytest.mark.parametrize("requirement", ["--help", "-r", "-e.", "requirements/-x.txt"])
def test_a_requirement_file_never_reads_as_an_option(requirement: str) -> None:
    with override_settings(DEPLOYKIT=dk(REQUIREMENTS=[requirement], **CONTAINERS)):
        if requirement.startswith("-"):
            with pytest.raises(SpecError, match=r"REQUIREMENTS.*must not start with '-'"):
                build_plan()
        else:
            assert build_plan().container.requirements == (requirement,)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("STATIC_URL", "/static/../../etc/"),
        ("STATIC_URL", "/./static/"),
        ("STATIC_URL", "/" + "s" * 100_000 + "/"),
        ("FORCE_SCRIPT_NAME", "/" + "p" * 100_000),
        ("FORCE_SCRIPT_NAME", "/a/../b"),
    ],
)
def test_long_values_and_dot_segments_are_refused(setting: str, value: str) -> None:
    with override_settings(**{setting: value}), pytest.raises(SpecError) as caught:
        build_plan()
    assert caught.value.setting == setting


def test_long_root_path_override_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        build_plan({"ROOT_PATH": "/" + "r" * 100_000}, {"ROOT_PATH": "--root-path"})
    assert caught.value.setting == "--root-path"


# -- item 7: hosts and binds that one target cannot take -------------------------------------------------

TLS = ["--tls-certificate", "/etc/ssl/a.pem", "--tls-certificate-key", "/etc/ssl/a.key"]


def check(*args: str) -> str:
    """``deployconfig ARGS --check``: the real tool's verdict; the rendered file."""
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    call_command("deployconfig", *args, "--check", stdout=out, stderr=err)
    assert err.getvalue().splitlines()[-1].startswith("Checked "), err.getvalue()
    return out.getvalue()


def test_caddy_takes_django_host_patterns_and_ipv6_names() -> None:
    for tool in ("caddy",):
        require_tool(tool)
    # Django's ".example.com" is the domain and its subdomains; "example.com." is fully qualified.
    text = check("caddy", "--domain", ".example.com", "--domain", "example.org.", *TLS)
    assert "*.example.com:443" in text and "example.com:443" in text and "example.org:443" in text
    assert "example.org.:" not in text
    text = check("caddy", "--domain", "::1", "--domain", "localhost")
    assert "http://[::1]:80" in text


def test_apache_and_nginx_bracket_ipv6_names_and_apache_needs_one_it_can_name() -> None:
    for tool in ("apachectl", "nginx"):
        require_tool(tool)
    text = check("apache", "--domain", "::1", "--domain", "localhost")
    assert "ServerName localhost" in text and "ServerAlias [::1]" in text
    # nginx compares server_name with the Host header, which brackets an IPv6 address.
    assert "[::1]" in check("nginx", "--domain", "::1")
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=r"SERVER_NAMES.*Apache needs a host name or IPv4 address"):
        call_command("deployconfig", "apache", "--domain", "::1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["systemd-socket", "--bind", "app.internal:8000", "--fd", "3"], "ListenStream= takes an IP address"),
        (
            ["supervisor", "--process-manager", "supervisor", "--bind", "[::1]:8000", "--server", "uvicorn"],
            "cannot take an IPv6 address",
        ),
        (["supervisor", "--process-manager", "supervisor", "--bind", "app.internal:8000"], "takes an IP address"),
    ],
)
def test_binds_the_process_manager_cannot_take_are_refused(args: list[str], message: str, tmp_path: Path) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=rf"^--bind = .*{message}"):
        call_command("deployconfig", *args, "-o", str(tmp_path / "out"))
    assert list(tmp_path.iterdir()) == []
