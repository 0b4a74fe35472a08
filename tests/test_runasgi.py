"""runasgi: argv per backend (exact), refusals, and the run path with a recording fake backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploykit.management.commands import runasgi
from deploykit.servers.uvicorn import Uvicorn
from tests.settings_unreadable import READ

PY = "/srv/example/venv/bin/python"
#: What gunicorn's argv cannot carry, for deploykit's uvicorn worker (deploykit.serverenv).
GUNICORN_ENV = (
    "DEPLOYKIT_SERVER_WS_MAX_SIZE=1048576 DEPLOYKIT_SERVER_WS_PER_MESSAGE_DEFLATE=0 D"
    "EPLOYKIT_SERVER_WS_PING_INTERVAL=20 DEPLOYKIT_SERVER_WS_PING_TIMEOUT=20 "
)
#: The drain (DRAIN_TIMEOUT, default 30): the application behind deploykit.drain, its file in the runtime directory.
APP_ENV = "DEPLOYKIT_SERVER_APP=testproject.asgi.application "
DRAIN_ENV = "DEPLOYKIT_SERVER_DRAIN_FILE=/run/example/example.drain DEPLOYKIT_SERVER_DRAIN_TIMEOUT=30 "
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://r:6379"]}}}


def print_command(*args: str) -> str:
    out = StringIO()
    call_command("runasgi", "--print-command", *args, stdout=out)
    return out.getvalue().strip()


@override_settings(CHANNEL_LAYERS=REDIS)
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--server", "uvicorn", "--workers", "2"],
            f"{APP_ENV}{DRAIN_ENV}{PY} -m uvicorn deploykit.drain:application --uds /run/example/example.sock "
            "--backlog 4096 --workers 2 "
            "--proxy-headers --forwarded-allow-ips '*' --lifespan auto --timeout-graceful-shutdown 30 "
            "--timeout-keep-alive 5 --ws-ping-interval 20 --ws-ping-timeout 20 --ws-max-size 1048576 "
            "--ws-per-message-deflate false --log-level info --no-access-log",
        ),
        (
            ["--server", "daphne", "127.0.0.1:8001"],
            f"{APP_ENV}{DRAIN_ENV}{PY} -m daphne -b 127.0.0.1 -p 8001 --proxy-headers --ping-interval 20 "
            "--ping-timeout 20 "
            "--websocket_timeout 86400 --websocket-max-message-size 1048576 --application-close-timeout 30 "
            "-v 1 --access-log /dev/null deploykit.drain:application",
        ),
        (
            ["--server", "gunicorn", "--workers", "3", "--uds", "/run/g/g.sock"],
            f"{APP_ENV}{DRAIN_ENV}{GUNICORN_ENV}{PY} -m gunicorn deploykit.drain:application "
            "--worker-class deploykit.servers.gunicorn_worker.UvicornWorker "
            "--bind unix:/run/g/g.sock --workers 3 --backlog 4096 --graceful-timeout 30 --keep-alive 5 "
            "--log-level info "
            "--forwarded-allow-ips '*'",
        ),
        (
            ["--server", "granian", "--workers", "2", "[::1]:9000", "--root-path", "/chat"],
            f"{APP_ENV}{DRAIN_ENV}DEPLOYKIT_SERVER_TRUSTED_PROXIES=127.0.0.1,::1 "
            f"{PY} -m granian --interface asgi --host ::1 --port 9000 --workers 2 --backlog 4096 "
            "--url-path-prefix /chat "
            "--workers-kill-timeout 30 --respawn-failed-workers --log-level info --no-access-log "
            "deploykit.drain:application",
        ),
        (
            ["--server", "hypercorn", "--workers", "2", "--fd", "3"],
            f"{APP_ENV}{DRAIN_ENV}'DEPLOYKIT_SERVER_TRUSTED_PROXIES=*' "
            f"DEPLOYKIT_SERVER_WS_MAX_SIZE=1048576 {PY} -m hypercorn "
            "--config python:deploykit.servers.hypercorn_config "
            "--bind fd://3 --workers 2 --backlog 4096 --graceful-timeout 30 --keep-alive 5 "
            "--websocket-ping-interval 20 --log-level INFO deploykit.drain:application",
        ),
        (
            ["--server", "gunicorn", "--workers", "2", "[::1]:9000"],
            # On TCP the drain serves through deploykit.proxy, which drops what the worker's uvicorn left in the
            # request of a peer outside the list (Django's SECURE_PROXY_SSL_HEADER would read it).
            f"{APP_ENV}{DRAIN_ENV}DEPLOYKIT_SERVER_FORWARDED_ALLOW_IPS=127.0.0.1,::1 DEPLOYKIT_SERVER_TRUSTED_PROXIES= "
            f"{GUNICORN_ENV}{PY} -m gunicorn deploykit.drain:application "
            "--worker-class deploykit.servers.gunicorn_worker.UvicornWorker "
            "--bind '[::1]:9000' --workers 2 --backlog 4096 --graceful-timeout 30 --keep-alive 5 --log-level info "
            "--forwarded-allow-ips 127.0.0.1,::1",
        ),
        (
            ["--server", "hypercorn", "--workers", "2", "127.0.0.1:8001", "--no-proxy-headers"],
            f"{APP_ENV}{DRAIN_ENV}DEPLOYKIT_SERVER_WS_MAX_SIZE=1048576 {PY} -m hypercorn "
            "--config python:deploykit.servers.hypercorn_config "
            "--bind 127.0.0.1:8001 --workers 2 --backlog 4096 --graceful-timeout 30 --keep-alive 5 "
            "--websocket-ping-interval 20 --log-level INFO deploykit.drain:application",
        ),
    ],
)
def test_print_command_is_the_exact_argv(args: list[str], expected: str) -> None:
    assert print_command(*args) == expected


def test_print_command_matches_the_backend_argv_and_environment_the_config_targets_use() -> None:
    import shlex

    from deploykit.plan import build_plan
    from deploykit.servers import get_backend

    for server in ("uvicorn", "granian"):
        backend = get_backend(build_plan({"SERVER": server}))
        env = [f"{k}={val}" for k, val in sorted(backend.environment().items())]
        assert shlex.split(print_command("--server", server)) == env + backend.argv()


def test_daphne_workers_refused_with_hint() -> None:
    with pytest.raises(CommandError, match=r"^--workers = 2: daphne has no worker option.*numprocs"):
        print_command("--server", "daphne", "--workers", "2")


@override_settings(CHANNEL_LAYERS=REDIS)
def test_reload_with_workers_refused() -> None:
    with pytest.raises(CommandError, match=r"--reload runs one process; the plan has 2"):
        call_command("runasgi", "--reload", "--workers", "2")


def test_invalid_option_names_the_flag() -> None:
    with pytest.raises(CommandError, match=r"^--uds = 'relative.sock': must be an absolute path$"):
        print_command("--uds", "relative.sock")


def test_missing_backend_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Uvicorn, "is_installed", classmethod(lambda cls: False))
    with pytest.raises(CommandError, match=r"^uvicorn is not installed: pip install 'deploykit\[uvicorn\]'$"):
        print_command("--server", "uvicorn")


class Recorder:
    """Stands in for runner.run (the command's seam): records what would run instead of running it."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[str], bool]] = []
        self.environments: list[dict[str, str]] = []

    def __call__(self, plan: object, argv: list[str], environment: dict[str, str], *, reload: bool = False) -> None:
        self.runs.append((argv, reload))
        self.environments.append(dict(environment))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    fake = Recorder()
    monkeypatch.setattr(runasgi.Command, "run_server", staticmethod(fake))
    return fake


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    # call_command skips checks unless told otherwise; manage.py runs them.
    call_command("runasgi", *args, stdout=out, stderr=err, skip_checks="--skip-checks" in args)
    return out.getvalue(), err.getvalue()


def short_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="dk", dir="/tmp"))


def test_run_prints_the_choice_runs_checks_and_hands_over_the_argv(recorder: Recorder) -> None:
    sock = short_dir() / "app.sock"
    out, err = run("--uds", str(sock))
    assert err.splitlines()[0] == 'deploykit: server: uvicorn (installed; set DEPLOYKIT["SERVER"] to choose another)'
    assert out == "System check identified no issues (0 silenced).\n"
    [(argv, reload)] = recorder.runs
    assert argv[argv.index("--uds") + 1] == str(sock)
    assert reload is False
    assert err.splitlines()[-1].startswith(f"deploykit: {APP_ENV}{DRAIN_ENV}{PY} -m uvicorn")


def test_in_memory_layer_with_several_processes_is_refused(recorder: Recorder) -> None:
    with pytest.raises(CommandError, match=r"(?s)^The in-memory channel layer is used with 2 server processes.*E002"):
        run("127.0.0.1:8123", "--workers", "2", "--skip-checks")
    assert recorder.runs == []


def test_print_command_with_an_in_memory_layer_and_workers_prints_and_warns() -> None:
    out, err = StringIO(), StringIO()
    call_command("runasgi", "--server", "uvicorn", "--workers", "2", "--print-command", stdout=out, stderr=err)
    assert out.getvalue().startswith(f"{APP_ENV}{DRAIN_ENV}{PY} -m uvicorn deploykit.drain:application ")
    assert " --workers 2 " in out.getvalue()
    assert err.getvalue().startswith(
        "deploykit: warning: The in-memory channel layer is used with 2 server processes: group messages will "
        "not cross processes and are silently lost.\nHINT: Use channels_redis"
    )


def test_stale_socket_is_removed(recorder: Recorder) -> None:
    path = short_dir() / "app.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # bound, never listening: what a crashed server leaves
    assert path.exists()
    run("--uds", str(path), "--skip-checks")
    assert not path.exists()
    assert len(recorder.runs) == 1


def test_live_socket_is_refused(recorder: Recorder) -> None:
    path = short_dir() / "app.sock"
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(path))
    live.listen()
    try:
        with pytest.raises(CommandError, match=f"^Something is already listening on {path}.$"):
            run("--uds", str(path), "--skip-checks")
    finally:
        live.close()
    assert recorder.runs == []


def test_regular_file_at_socket_path_is_refused(recorder: Recorder) -> None:
    path = short_dir() / "app.sock"
    path.write_text("not a socket")
    with pytest.raises(CommandError, match="exists and is not a socket"):
        run("--uds", str(path), "--skip-checks")
    assert path.read_text() == "not a socket"


def test_reload_is_passed_to_the_backend(recorder: Recorder) -> None:
    run("127.0.0.1:8123", "--reload", "--skip-checks")
    [(argv, reload)] = recorder.runs
    # uvicorn reloads itself: the flag is in its argv, not Django's autoreloader around it.
    assert reload is False
    assert "--reload" in argv and "--workers" not in argv
    run("127.0.0.1:8124", "--server", "daphne", "--reload", "--skip-checks")
    (argv, reload) = recorder.runs[-1]
    assert reload is True and "--reload" not in argv


def manage(settings_module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` in a fresh process (no plan cached by earlier tests), with only the given settings."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={"DJANGO_SETTINGS_MODULE": settings_module, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )


@pytest.mark.parametrize(("command", "option"), [("runasgi", "--print-command"), ("deployconfig", "--dry-run")])
def test_help_works_without_reading_settings(command: str, option: str) -> None:
    result = manage("tests.settings_unreadable", command, "--help")
    assert result.returncode == 0, result.stderr
    assert option in result.stdout
    # The settings do break whatever reads them: the same command, run for real, fails.
    ran = manage("tests.settings_unreadable", command, "--print-command" if command == "runasgi" else "env")
    assert ran.returncode != 0
    assert f"RuntimeError: {READ}" in ran.stderr
