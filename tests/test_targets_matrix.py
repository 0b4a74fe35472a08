"""Every file of every server x bind x TLS x sub-path combination passes its real validator."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from deploykit.exceptions import SpecError
from deploykit.plan import Plan, build_plan
from deploykit.plan.model import INHERITED_SOCKET_SERVERS, INHERITED_UNIX_SOCKET_SERVERS
from deploykit.servers import get_backend
from deploykit.targets.apache import Apache
from deploykit.targets.caddy import Caddy
from deploykit.targets.gunicorn import Gunicorn
from deploykit.targets.nginx import Nginx
from deploykit.targets.supervisor import Supervisor, parse
from deploykit.targets.systemd import MAX_EXPOSURE, Systemd, SystemdSocket, exposure, verify
from tests.conftest import require_tool
from tests.parsers import systemd_exec, systemd_unit

SERVERS = ("daphne", "uvicorn", "gunicorn", "granian", "hypercorn")
COMBOS = list(itertools.product(("unix", "tcp"), (True, False), (True, False)))


def listening_on(server: str, argv: list[str]) -> list[str]:
    """Where the server listens, as its own command-line parser reads ``argv`` (``python -m SERVER ...``).

    ``fd://N`` for an inherited socket, else the address; the servers' own precedence where several are given.
    """
    args = argv[argv.index(server) + 1 :]
    if server == "daphne":
        from daphne.cli import CommandLineInterface
        from daphne.endpoints import build_endpoint_description_strings

        ns = CommandLineInterface().parser.parse_args(args)
        endpoints = build_endpoint_description_strings(ns.host, ns.port, ns.unix_socket, ns.file_descriptor)
        return [e.replace("fd:fileno=", "fd://") for e in ns.socket_strings + endpoints]
    if server == "uvicorn":
        from uvicorn.main import main

        params = main.make_context("uvicorn", list(args)).params
        # uvicorn's Config.bind_socket: the unix socket first, then the fd, then host and port.
        if params["uds"]:
            return [f"unix:{params['uds']}"]
        return [f"fd://{params['fd']}"] if params["fd"] is not None else [f"{params['host']}:{params['port']}"]
    if server == "gunicorn":
        from gunicorn.config import Config

        config = Config()
        for key, value in vars(config.parser().parse_args(args)).items():
            if value is not None and key in config.settings:  # as gunicorn's BaseApplication.load_config
                config.set(key.lower(), value)
        return list(config.bind)
    if server == "hypercorn":
        from hypercorn import __main__ as cli

        # hypercorn's main() parses the command line and its --config, then run(config): stop there.
        loaded: list[Any] = []
        with mock.patch.object(cli, "run", lambda config: loaded.append(config) or 0):
            cli.main(args)
        return list(loaded[0].bind)
    raise AssertionError(f"no parser for {server}")


def matrix_plan(server: str, bind: str, tls: bool, subpath: bool, **extra: Any) -> Plan:
    name = f"m-{server[:4]}-{bind}-{int(tls)}{int(subpath)}"
    overrides: dict[str, Any] = {
        "NAME": name,
        "SERVER": server,
        "WORKERS": 1 if server == "daphne" else 2,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        # systemd-analyze verify checks that ExecStart's binary exists.
        "VIRTUALENV": sys.prefix,
        **({"SOCKET": f"/run/{name}/{name}.sock"} if bind == "unix" else {"BIND": "127.0.0.1:8001"}),
    }
    if tls:
        overrides |= {"TLS_CERTIFICATE": "/etc/ssl/m/fullchain.pem", "TLS_CERTIFICATE_KEY": "/etc/ssl/m/privkey.pem"}
    if subpath:
        overrides["ROOT_PATH"] = "/chat"
    return build_plan({**overrides, **extra})


@pytest.mark.parametrize("server", SERVERS)
def test_proxies_pass_their_validators(server: str, tmp_path: Path) -> None:
    for tool in ("nginx", "apachectl", "caddy", "openssl"):
        require_tool(tool)
    for bind, tls, subpath in COMBOS:
        plan = matrix_plan(server, bind, tls, subpath)
        for target in (Nginx(plan), Apache(plan), Caddy(plan)):
            workdir = tmp_path / f"{target.name}-{bind}-{tls}-{subpath}"
            workdir.mkdir()
            target.validate(target.render(), workdir)


@pytest.mark.parametrize("server", SERVERS)
def test_systemd_units_verify_and_are_hardened(server: str, tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    units = []
    for bind, tls, subpath in COMBOS:
        target = Systemd(matrix_plan(server, bind, tls, subpath))
        unit = tmp_path / target.filename
        unit.write_text(target.render())
        assert exposure(unit) <= MAX_EXPOSURE
        units.append(unit)
    verify(units)  # one run for the eight units


@pytest.mark.parametrize("server", INHERITED_SOCKET_SERVERS)
def test_socket_activation_units_verify(server: str, tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    # The plan refuses daphne on a unix fd (tests/test_socket_activation.py).
    for bind in ("unix", "tcp") if server in INHERITED_UNIX_SOCKET_SERVERS else ("tcp",):
        plan = matrix_plan(server, bind, False, False, FD=3)
        service, socket = Systemd(plan), SystemdSocket(plan)
        assert socket.applies()
        assert "Requires=" + socket.filename in service.render()
        # systemd passes a socket unit's sockets from fd 3 on, in order (SD_LISTEN_FDS_START): with one
        # ListenStream, fd 3 is the plan's address, and the server must listen there and nowhere else.
        listen = [value for _, key, value in systemd_unit(socket.render()) if key == "ListenStream"]
        assert listen == [{"unix": f"/run/{plan.app.name}/{plan.app.name}.sock", "tcp": "127.0.0.1:8001"}[bind]]
        if server == "gunicorn":
            # gunicorn takes systemd's sockets from LISTEN_FDS itself (fd 3 on) and binds nothing then; an
            # fd://3 besides would be a second listener on fd 3, which the first closes (EBADF at start).
            assert listening_on(server, get_backend(plan).argv()) == [str(plan.server.address)]
        else:
            assert listening_on(server, get_backend(plan).argv()) == ["fd://3"]
        unit = {key: value for _, key, value in systemd_unit(service.render())}
        # systemd removes a service's RuntimeDirectory= (and the socket in it) whenever the service stops,
        # and chowns what is in it when it starts (systemd/systemd#8635): the socket unit owns that folder.
        assert "RuntimeDirectory" not in unit and "ExecStartPre" not in unit
        if bind == "unix":
            sock = {key: value for _, key, value in systemd_unit(socket.render())}
            owner = (plan.process_manager.user, plan.process_manager.proxy_group, "0660")
            assert (sock["SocketUser"], sock["SocketGroup"], sock["SocketMode"]) == owner
            assert sock["DirectoryMode"] == "0755"  # root's; the proxy's group only crosses it
        (tmp_path / service.filename).write_text(service.render())
        (tmp_path / socket.filename).write_text(socket.render())
        assert exposure(tmp_path / service.filename) <= MAX_EXPOSURE
        verify([tmp_path / socket.filename, tmp_path / service.filename])


@pytest.mark.parametrize("server", [s for s in SERVERS if s != "granian"])
def test_supervisor_runs_exactly_the_plans_argv(server: str, tmp_path: Path) -> None:
    binds = ("tcp",) if server == "daphne" else ("unix", "tcp")  # the plan refuses daphne on a unix fd
    for bind, subpath in itertools.product(binds, (True, False)):
        plan = matrix_plan(server, bind, False, subpath, PROCESS_MANAGER="supervisor", PROCESSES=3)
        workdir = tmp_path / f"{bind}-{subpath}"
        workdir.mkdir()
        processes = parse(Supervisor(plan).render(), workdir)
        name = plan.process_manager.name
        argv = get_backend(plan).argv()
        # The project's environment, and the backend's own next to its argv (deploykit.serverenv).
        environment = {"DJANGO_SETTINGS_MODULE": "tests.settings", **get_backend(plan).environment()}
        assert processes == [(f"{name}_{i}", argv, environment) for i in range(3)]
        assert listening_on(server, argv) == ["fd://0"]  # supervisor's socket, inherited as fd 0


def test_supervisor_cannot_hand_daphne_a_unix_socket() -> None:
    with pytest.raises(SpecError, match="daphne cannot serve a unix socket that supervisor passes on fd 0"):
        matrix_plan("daphne", "unix", False, False, PROCESS_MANAGER="supervisor")


def test_supervisor_cannot_hand_granian_a_socket() -> None:
    # The plan refuses the pair, so no target ever renders it.
    with pytest.raises(SpecError, match="granian cannot take an inherited socket"):
        matrix_plan("granian", "unix", False, False, PROCESS_MANAGER="supervisor")


@pytest.mark.parametrize("bind", ["unix", "tcp"])
def test_gunicorn_conf_loads_in_gunicorns_config(bind: str, tmp_path: Path) -> None:
    target = Gunicorn(matrix_plan("gunicorn", bind, False, True))
    target.validate(target.render(), tmp_path)


def test_supervisor_environment_round_trips(tmp_path: Path) -> None:
    environment = {"GREETING": 'a "100%" day', "QUOTE": "it's", "PATHS": "/a:/b c"}
    plan = matrix_plan("uvicorn", "unix", False, False, PROCESS_MANAGER="supervisor", ENVIRONMENT=environment)
    [(_, _, parsed)] = parse(Supervisor(plan).render(), tmp_path)
    # With the server's own variables (deploykit.serverenv): the drain's, here.
    contract = get_backend(plan).environment()
    assert parsed == {**environment, "DJANGO_SETTINGS_MODULE": "tests.settings", **contract}


# -- split serving (issue 15): HTTP through a WSGI server, WebSockets through the ASGI server -------------

WSGI_SERVERS = ("granian", "gunicorn")
SPLIT_SETTINGS = {"WSGI_APPLICATION": "testproject.wsgi.application"}


def split_plan(server: str, wsgi: str, bind: str, tls: bool, subpath: bool, **extra: Any) -> Plan:
    from django.test import override_settings

    with override_settings(**SPLIT_SETTINGS):
        return matrix_plan(server, bind, tls, subpath, WSGI_SERVER=wsgi, WSGI_WORKERS=2, **extra)


@pytest.mark.parametrize("wsgi", WSGI_SERVERS)
@pytest.mark.parametrize("server", SERVERS)
def test_split_systemd_units_verify_and_are_hardened(server: str, wsgi: str, tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    from deploykit.servers.wsgi import get_wsgi_backend

    units = []
    for bind, tls, subpath in COMBOS:
        plan = split_plan(server, wsgi, bind, tls, subpath)
        assert plan.wsgi is not None
        files = Systemd(plan).files()
        assert [f.name for f in files] == [f"{plan.app.name}.service", f"{plan.wsgi.name}.service"]
        asgi_unit, wsgi_unit = (
            dict((k, val) for s, k, val in systemd_unit(f.content) if s == "Service") for f in files
        )
        assert systemd_exec(asgi_unit["ExecStart"]) == get_backend(plan).argv()
        assert systemd_exec(wsgi_unit["ExecStart"]) == get_wsgi_backend(plan).argv()
        # Separate runtime directories: stopping one unit never removes the other's socket.
        assert asgi_unit["RuntimeDirectory"] != wsgi_unit["RuntimeDirectory"]
        for file in files:
            unit = tmp_path / file.name
            unit.write_text(file.content)
            assert exposure(unit) <= MAX_EXPOSURE, file.name
            units.append(unit)
    verify(units)


@pytest.mark.parametrize("server", [s for s in SERVERS if s not in ("granian", "daphne")])
def test_split_supervisor_runs_both_programs(server: str, tmp_path: Path) -> None:
    from deploykit.servers.wsgi import get_wsgi_backend

    for bind in ("unix", "tcp"):
        plan = split_plan(server, "gunicorn", bind, False, True, PROCESS_MANAGER="supervisor", PROCESSES=2)
        assert plan.wsgi is not None
        workdir = tmp_path / bind
        workdir.mkdir()
        processes = parse(Supervisor(plan).render(), workdir)
        name, wsgi = plan.process_manager.name, get_wsgi_backend(plan)
        base = {"DJANGO_SETTINGS_MODULE": "tests.settings"}
        asgi_env = {**base, **get_backend(plan).environment()}
        assert processes == [
            *((f"{name}_{i}", get_backend(plan).argv(), asgi_env) for i in range(2)),
            (f"{plan.wsgi.name}_0", wsgi.argv(), {**base, **wsgi.environment()}),
        ]
        assert listening_on("gunicorn", wsgi.argv()) == ["fd://0"]


@pytest.mark.parametrize("wsgi", WSGI_SERVERS)
@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_split_proxies_pass_their_validators(server: str, wsgi: str, tmp_path: Path) -> None:
    for tool in ("nginx", "apachectl", "caddy", "openssl"):
        require_tool(tool)
    for bind, tls, subpath in COMBOS:
        plan = split_plan(server, wsgi, bind, tls, subpath)
        assert plan.wsgi is not None
        for target in (Nginx(plan), Apache(plan), Caddy(plan)):
            workdir = tmp_path / f"{target.name}-{bind}-{tls}-{subpath}"
            workdir.mkdir()
            content = target.render()
            # Both servers are in the file: the split is not silently dropped by a template.
            wsgi_address = plan.wsgi.address.path or str(plan.wsgi.address)
            assert wsgi_address in content, target.name
            target.validate(content, workdir)


#: A CDN's networks (both families) and a load balancer's address in front of the proxy (issue 17 item 4).
EDGE = {"TRUSTED_PROXIES": ["173.245.48.0/20", "2400:cb00::/32", "10.0.0.5"]}


@pytest.mark.parametrize("split", [False, True])
def test_proxies_behind_an_edge_pass_their_validators(split: bool, tmp_path: Path) -> None:
    for tool in ("nginx", "apachectl", "caddy", "openssl"):
        require_tool(tool)
    for bind, tls, subpath in COMBOS:
        if split:
            plan = split_plan("uvicorn", "gunicorn", bind, tls, subpath, **EDGE)
        else:
            plan = matrix_plan("uvicorn", bind, tls, subpath, **EDGE)
        for target in (Nginx(plan), Apache(plan), Caddy(plan)):
            workdir = tmp_path / f"{target.name}-{bind}-{tls}-{subpath}"
            workdir.mkdir()
            content = target.render()
            # The edge is in the file: not silently dropped by a template.
            assert "2400:cb00::/32" in content, target.name
            target.validate(content, workdir)


# -- issue 17: background processes, the release step, timers ---------------------------------------------

PROCESSES = {
    "celery": {"kind": "celery-worker", "app": "config.celery_app", "concurrency": 2, "queues": ["default"]},
    "beat": {"kind": "celery-beat", "app": "config.celery_app"},
    "thumbnails": {"kind": "runworker", "channels": ["thumbnails"]},
    "sessions": {"kind": "command", "command": ["clearsessions"]},
}
TIMERS = {
    "clearsessions": {"command": "clearsessions", "schedule": "daily"},
    "report": {"command": ["check", "--deploy"], "schedule": "*/15 8-18 * * mon-fri", "timeout": 600},
}


#: runworker needs a layer that crosses processes; the workers' allow list must hold Redis.
REDIS_LAYER = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}
}


def processes_plan(bind: str, split: bool, **extra: Any) -> Plan:
    from django.test import override_settings

    values = {"BACKGROUND_PROCESSES": PROCESSES, "TIMERS": TIMERS, **extra}
    with override_settings(CHANNEL_LAYERS=REDIS_LAYER):
        if split:
            return split_plan("uvicorn", "gunicorn", bind, False, False, **values)
        return matrix_plan("uvicorn", bind, False, False, **values)


@pytest.mark.parametrize("split", [False, True])
def test_process_units_verify_are_hardened_and_run_the_plans_argv(split: bool, tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    from deploykit.processes import argv
    from deploykit.targets.processes import SystemdProcesses

    for bind in ("unix", "tcp"):
        plan = processes_plan(bind, split)
        name, p = plan.app.name, plan.processes
        files = {f.name: f.content for f in SystemdProcesses(plan).files()}
        assert sorted(files) == sorted(
            [f"{name}-release.service"]
            + [f"{name}-{b}.service" for b in PROCESSES]
            + [f"{name}-{t}.{suffix}" for t in TIMERS for suffix in ("service", "timer")]
        )
        units = {n: {(s, k): val for s, k, val in systemd_unit(c)} for n, c in files.items()}
        web = {(s, k): val for s, k, val in systemd_unit(Systemd(plan).render())}
        dependents = [f"{name}.service", *([f"{name}-http.service"] if split else [])]
        dependents += [f"{b.unit}.service" for b in p.background]
        release = units[f"{name}-release.service"]
        assert release[("Service", "Type")] == "oneshot" and release[("Service", "RemainAfterExit")] == "yes"
        assert release[("Unit", "Before")].split() == release[("Install", "RequiredBy")].split() == dependents
        assert systemd_exec(release[("Service", "ExecStart")]) == argv(plan, p.release_process)
        for process in (*p.background, *p.timers):
            unit = units[f"{process.unit}.service"]
            assert systemd_exec(unit[("Service", "ExecStart")]) == argv(plan, process)
        for unit in units.values():
            if ("Service", "ExecStart") not in unit:
                continue
            # Shared with the web unit: who runs it, where, with which secrets and network peers.
            for key in ("User", "Group", "WorkingDirectory", "EnvironmentFile", "IPAddressAllow", "IPAddressDeny"):
                assert unit.get(("Service", key)) == web.get(("Service", key)), key
        worker = units[f"{name}-celery.service"]
        assert worker[("Service", "KillSignal")] == "SIGTERM" and int(worker[("Service", "TimeoutStopSec")]) >= 300
        assert units[f"{name}-thumbnails.service"][("Service", "KillSignal")] == "SIGINT"
        assert units[f"{name}-beat.service"][("Service", "StateDirectory")] == f"{name}-beat"
        assert units[f"{name}-report.timer"][("Timer", "OnCalendar")] == "Mon..Fri *-*-* 08..18:00/15:00 UTC"
        workdir = tmp_path / f"{bind}-{split}"
        workdir.mkdir()
        (workdir / "web.service").write_text(Systemd(plan).render())
        web_score = exposure(workdir / "web.service")
        paths = []
        for file_name, content in files.items():
            path = workdir / file_name
            path.write_text(content)
            paths.append(path)
            if file_name.endswith(".service"):
                # Rated as the web unit: the same sandbox.
                assert exposure(path) == web_score <= MAX_EXPOSURE, file_name
        verify(paths)
        SystemdProcesses(plan).check(SystemdProcesses(plan).files(), workdir)


def test_timer_calendars_are_what_systemd_reads(tmp_path: Path) -> None:
    """systemd-analyze calendar normalises each OnCalendar= to itself: systemd reads the schedule as written."""
    import subprocess

    systemd_analyze = require_tool("systemd-analyze")
    plan = processes_plan("unix", False)
    for timer in plan.processes.timers:
        done = subprocess.run(
            [systemd_analyze, "calendar", timer.on_calendar], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert f"Normalized form: {timer.on_calendar}" in done.stdout


def test_supervisor_programs_run_exactly_the_plans_argv(tmp_path: Path) -> None:
    from deploykit.processes import argv
    from deploykit.targets.processes import SupervisorProcesses

    plan = processes_plan("tcp", False, PROCESS_MANAGER="supervisor")
    target = SupervisorProcesses(plan)
    assert target.applies()
    parsed = parse(target.render(), tmp_path)
    environment = {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    assert sorted(parsed) == sorted((b.unit, argv(plan, b), environment) for b in plan.processes.background)
    content = target.render()
    assert "stopsignal=INT" in content and "stopwaitsecs=300" in content


def cron_times(cron: str, start: Any, count: int) -> list[Any]:
    """The next ``count`` times (after ``start``, UTC) cron itself would run ``cron``: minute by minute, as cron
    matches (days of the month and of the week are never both restricted: the plan refuses that)."""
    import datetime

    from deploykit.plan.schedule import FIELDS

    names = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

    def allowed(field: str, index: int) -> set[int]:
        low, high = FIELDS[index][1], FIELDS[index][2]
        values: set[int] = set()
        for item in field.split(","):
            span, _, step = item.partition("/")
            if span == "*":
                first, last = low, high
            else:
                a, _, b = span.partition("-")
                first = names.get(a, None) if index == 4 and a in names else int(a)
                last = (names[b] if index == 4 and b in names else int(b)) if b else first
            values |= set(range(first, last + 1, int(step) if step else 1))  # type: ignore[arg-type]
        return {0 if index == 4 and v == 7 else v for v in values}

    minute, hour, dom, month, dow = (allowed(f, i) for i, f in enumerate(cron.split()))
    found, t = [], start.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    while len(found) < count:
        weekday = (t.weekday() + 1) % 7  # cron: 0 is Sunday
        if t.minute in minute and t.hour in hour and t.day in dom and t.month in month and weekday in dow:
            found.append(t)
        t += datetime.timedelta(minutes=1)
    return found


@pytest.mark.parametrize(
    "schedule",
    ["daily", "hourly", "weekly", "monthly", "30 3 * * *", "*/15 8-18 * * mon-fri", "5,35 8-18/2 * * 0", "0 0 1 */3 *"],
)
def test_systemd_runs_a_timer_when_cron_would(schedule: str) -> None:
    """systemd-analyze calendar's next runs of the OnCalendar= the plan writes are cron's own next runs."""
    import datetime
    import subprocess

    from deploykit.plan.schedule import parse

    systemd_analyze = require_tool("systemd-analyze")
    cron, calendar = parse(schedule, "TIMERS")
    base = datetime.datetime(2026, 12, 30, 23, 50, tzinfo=datetime.timezone.utc)  # across a year's end
    done = subprocess.run(
        [systemd_analyze, "calendar", "--iterations=5", f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC", calendar],
        capture_output=True,
        text=True,
        timeout=30,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    seen = [
        datetime.datetime.strptime(m, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        for m in re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", done.stdout)
    ]
    assert seen == cron_times(cron, base, 5), done.stdout
