"""Split serving (issue 15): HTTP through a WSGI server, WebSockets through the ASGI server, from one plan.

The plan's WSGI section, its backends' argv and environment, and runasgi's two roles.
"""

from __future__ import annotations

import shlex
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.management.commands import runasgi
from deploykit.plan import build_plan
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from tests import settings as test_settings

PY = "/srv/example/venv/bin/python"
REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://r:6379", "socket_timeout": None}]},
    }
}
WSGI_APP = "testproject.wsgi.application"


def dk(**values: object) -> dict[str, object]:
    return {**test_settings.DEPLOYKIT, **values}


def split(**values: Any) -> dict[str, Any]:
    return {"DEPLOYKIT": dk(**{"WSGI_SERVER": "granian", **values}), "WSGI_APPLICATION": WSGI_APP}


def test_off_by_default() -> None:
    assert build_plan().wsgi is None


@override_settings(**split())
def test_eight_threads_per_wsgi_worker_by_default() -> None:
    """A/B on /account/ (issue 15): 8 threads took 16-27% less CPU per request than 4 with both servers."""
    plan = build_plan()
    assert plan.wsgi is not None and plan.wsgi.threads == 8
    assert "--blocking-threads 8" in " ".join(get_wsgi_backend(plan).argv())


@override_settings(**split(WSGI_WORKERS=3, WSGI_THREADS=2))
def test_the_wsgi_section_has_its_own_socket_directory_and_the_asgi_trust() -> None:
    plan = build_plan()
    assert plan.wsgi is not None
    w = plan.wsgi
    assert (w.backend, w.application, w.workers, w.threads) == ("granian", WSGI_APP, 3, 2)
    # Its own runtime directory: systemd removes a unit's RuntimeDirectory= when it stops, so a
    # shared one would take the other side's socket with it on every restart.
    assert w.runtime_directory == "/run/example-http"
    assert str(w.address) == "unix:/run/example-http/example-http.sock"
    assert w.name == "example-http"
    assert (w.proxy_headers, w.forwarded_allow_ips) == (True, ("*",))
    assert (w.graceful_timeout, w.root_path) == (plan.server.graceful_timeout, "")


@override_settings(**split())
def test_a_tcp_asgi_bind_puts_http_on_the_next_free_port() -> None:
    plan = build_plan({"BIND": "127.0.0.1:8001", "PROCESSES": 2, "WORKERS": 1})
    assert plan.wsgi is not None
    assert [str(b) for b in plan.server.addresses] == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert str(plan.wsgi.address) == "127.0.0.1:8003"
    assert plan.wsgi.forwarded_allow_ips == ("127.0.0.1", "::1")


@override_settings(**split(WSGI_BIND="127.0.0.1:9000"))
def test_wsgi_bind_is_read() -> None:
    wsgi = build_plan().wsgi
    assert wsgi is not None and str(wsgi.address) == "127.0.0.1:9000"
    assert wsgi.forwarded_allow_ips == ("127.0.0.1", "::1")  # TCP: loopback, not the socket's "*"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"WSGI_SERVER": "uwsgi"}, r"^DEPLOYKIT\[\"WSGI_SERVER\"\] = 'uwsgi': must be one of granian, gunicorn"),
        ({"WSGI_SERVER": "gunicorn", "WSGI_THREADS": 0}, r"^DEPLOYKIT\[\"WSGI_THREADS\"\] = 0: "),
        ({"WSGI_SERVER": "gunicorn", "WSGI_BIND": "nowhere"}, r"^DEPLOYKIT\[\"WSGI_BIND\"\] = 'nowhere': "),
        (
            {"WSGI_SERVER": "granian", "PROCESS_MANAGER": "supervisor"},
            r"^DEPLOYKIT\[\"WSGI_SERVER\"\] = 'granian': granian cannot take an inherited socket",
        ),
    ],
)
def test_invalid_values_name_the_setting(values: dict[str, Any], message: str) -> None:
    with override_settings(DEPLOYKIT=dk(**values), WSGI_APPLICATION=WSGI_APP), pytest.raises(SpecError, match=message):
        build_plan()


@override_settings(**split())
def test_granian_argv_and_environment() -> None:
    backend = get_wsgi_backend(build_plan({"WSGI_WORKERS": 2, "WSGI_THREADS": 4}))
    assert backend.argv() == [
        *(PY, "-m", "granian", "--interface", "wsgi"),
        *("--uds", "/run/example-http/example-http.sock", "--uds-permissions", "432"),
        *("--workers", "2", "--blocking-threads", "4", "--backlog", "4096", "--workers-kill-timeout", "30"),
        *("--respawn-failed-workers", "--log-level", "info", "--no-access-log", "deploykit.wsgiproxy:application"),
    ]
    assert backend.environment() == {
        "DEPLOYKIT_SERVER_APP": WSGI_APP,
        "DEPLOYKIT_SERVER_TRUSTED_PROXIES": "*",
        # Its readiness answers 503 while it drains (its own file: its own unit and runtime directory).
        "DEPLOYKIT_SERVER_DRAIN_FILE": "/run/example-http/example-http.drain",
    }


@override_settings(**split(WSGI_SERVER="gunicorn", ROOT_PATH="/chat"))
def test_gunicorn_argv_and_environment() -> None:
    backend = get_wsgi_backend(build_plan({"WSGI_WORKERS": 2, "WSGI_THREADS": 4, "BIND": "127.0.0.1:8001"}))
    assert backend.argv() == [
        *(PY, "-m", "gunicorn", "deploykit.wsgiproxy:application", "--worker-class", "gthread"),
        *("--bind", "127.0.0.1:8002", "--workers", "2", "--threads", "4", "--backlog", "4096"),
        *("--graceful-timeout", "30"),
        *("--keep-alive", "5", "--log-level", "info", "--forwarded-allow-ips", "127.0.0.1,::1"),
    ]
    assert backend.environment() == {
        "DEPLOYKIT_SERVER_APP": WSGI_APP,
        "DEPLOYKIT_SERVER_TRUSTED_PROXIES": "127.0.0.1,::1",
        "DEPLOYKIT_SERVER_ROOT_PATH": "/chat",
        "DEPLOYKIT_SERVER_DRAIN_FILE": "/run/example-http/example-http.drain",
    }


def print_command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("runasgi", "--print-command", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@override_settings(CHANNEL_LAYERS=REDIS, **split())
def test_print_command_prints_both_labelled() -> None:
    out, _ = print_command("--workers", "2", "--server", "uvicorn")
    plan = build_plan({"WORKERS": 2, "SERVER": "uvicorn"})
    asgi, wsgi = get_backend(plan), get_wsgi_backend(plan)

    def line(env: dict[str, str], argv: list[str]) -> str:
        return shlex.join([*(f"{k}={val}" for k, val in sorted(env.items())), *argv])

    assert out.splitlines() == [
        "# http: WSGI (granian), manage.py runasgi --role http",
        line(wsgi.environment(), wsgi.argv()),
        "# websocket: ASGI (uvicorn), manage.py runasgi --role websocket",
        line(asgi.environment(), asgi.argv()),
    ]


@override_settings(CHANNEL_LAYERS=REDIS, **split())
def test_print_command_with_a_role_prints_that_one_unlabelled() -> None:
    out, _ = print_command("--role", "http")
    wsgi = get_wsgi_backend(build_plan())
    assert shlex.split(out) == [*(f"{k}={v}" for k, v in sorted(wsgi.environment().items())), *wsgi.argv()]


def test_role_http_without_split_is_refused() -> None:
    with pytest.raises(CommandError, match=r"--role http needs DEPLOYKIT\[\"WSGI_SERVER\"\]"):
        print_command("--role", "http")


class Recorder:
    def __init__(self) -> None:
        self.runs: list[tuple[list[str], dict[str, str], bool]] = []

    def __call__(self, plan: object, argv: list[str], environment: dict[str, str], *, reload: bool = False) -> None:
        self.runs.append((argv, dict(environment), reload))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    fake = Recorder()
    monkeypatch.setattr(runasgi.Command, "run_server", staticmethod(fake))
    return fake


def run(*args: str) -> str:
    err = StringIO()
    call_command("runasgi", *args, stdout=StringIO(), stderr=err, skip_checks=True)
    return err.getvalue()


def test_role_http_runs_the_argv_the_unit_contains(recorder: Recorder, tmp_path: Any) -> None:
    import tempfile

    runtime = tempfile.mkdtemp(prefix="dk", dir="/tmp")
    with override_settings(CHANNEL_LAYERS=REDIS, **split(RUNTIME_DIRECTORY=runtime)):
        run("--role", "http")
        wsgi = get_wsgi_backend(build_plan())
    [(argv, env, reload)] = recorder.runs
    assert (argv, env, reload) == (wsgi.argv(), wsgi.environment(), False)


def test_split_without_a_role_is_refused_with_both_commands(recorder: Recorder) -> None:
    with (
        override_settings(CHANNEL_LAYERS=REDIS, **split()),
        pytest.raises(CommandError, match=r"(?s)two servers.*--role http.*--role websocket"),
    ):
        run()
    assert recorder.runs == []


def test_development_reload_stays_one_asgi_process(recorder: Recorder) -> None:
    with override_settings(**split()):
        run("127.0.0.1:8123", "--reload")
    [(argv, _, _)] = recorder.runs
    assert argv[:3] == [PY, "-m", "uvicorn"] and "--reload" in argv


def test_without_wsgi_application_djangos_own_handler_is_served(recorder: Recorder) -> None:
    """Django's runserver serves get_wsgi_application() when WSGI_APPLICATION is unset; so does the split.

    A project written for ASGI often has no wsgi.py (tests/projects/envsettings): its pages are served all
    the same, by Django's handler, through deploykit.wsgi (DJANGO_SETTINGS_MODULE from the environment).
    """
    with override_settings(CHANNEL_LAYERS=REDIS, DEPLOYKIT=dk(WSGI_SERVER="gunicorn"), WSGI_APPLICATION=None):
        plan = build_plan()
        run("--role", "http")
    assert plan.wsgi is not None and plan.wsgi.application == "deploykit.wsgi.application"
    assert "Django's own WSGI handler" in " ".join(plan.notes)
    [(_, env, _)] = recorder.runs
    assert env["DEPLOYKIT_SERVER_APP"] == "deploykit.wsgi.application"


def test_deploykit_wsgi_is_djangos_handler() -> None:
    from django.core.handlers.wsgi import WSGIHandler

    from deploykit import wsgi

    assert isinstance(wsgi.application, WSGIHandler)


def test_role_http_refuses_an_application_that_cannot_load(recorder: Recorder) -> None:
    with (
        override_settings(CHANNEL_LAYERS=REDIS, DEPLOYKIT=dk(WSGI_SERVER="gunicorn"), WSGI_APPLICATION="nope.wsgi.app"),
        pytest.raises(CommandError, match=r"^WSGI_APPLICATION 'nope.wsgi.app' cannot be loaded: ModuleNotFoundError"),
    ):
        run("--role", "http")
    assert recorder.runs == []


@override_settings(**split(HEALTH_PATH="/-/ready", IMAGE_TAG="1.0"))
def test_compose_nginx_points_at_the_services_never_at_the_hosts_socket() -> None:
    """The image's CMD stays the ASGI server (in_container); Compose's nginx reaches both services by name."""
    from deploykit.targets.compose import Compose

    plan = build_plan()
    assert plan.wsgi is not None and plan.in_container().wsgi is None and plan.container.wsgi is not None
    files = {f.name: f.content for f in Compose(plan).files()}
    nginx = next(text for name, text in files.items() if "nginx" in name)
    assert "-http.sock" not in nginx and "server http:8000 resolve;" in nginx
