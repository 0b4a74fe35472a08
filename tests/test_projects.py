"""Issue 12: deploykit on projects written the way real ones are (tests/projects/), one test per item.

Each test runs the project's own ``manage.py`` in a subprocess, with the project's directory on
PYTHONPATH (and, for a variant, a settings module written in a temp dir that imports the project's
settings and changes one thing). Assertions are on what a user observes: exit codes, the setting's
name in the output, the files written, a server that answers. Tests that fail on today's code carry
``xfail(strict=True, reason="issue 12 item N: ...")``: remove the marker with the fix.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import (
    PROJECTS,
    PYTHON,
    REPO,
    free_port,
    http_get,
    project_env,
    project_manage,
    settings_variant,
    short_tmpdir,
    start_or_refuse,
)

TUTORIAL = PROJECTS / "tutorial"
ENVSETTINGS = PROJECTS / "envsettings"
THIRDPARTY = PROJECTS / "thirdparty"
README_PROJECT = PROJECTS / "readme"
#: envsettings reads these at import time (a KeyError without SECRET_KEY).
ENVSETTINGS_ENV = {
    "SECRET_KEY": "envsettings-" + "k" * 50,
    "ALLOWED_HOSTS": "app.example.com,127.0.0.1",
    "REDIS_URL": "redis://10.20.30.40:6379/0",
}
SERVERS = ("daphne", "uvicorn", "gunicorn", "granian", "hypercorn")


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    """A short temp dir (unix socket paths must fit in 107 bytes)."""
    path = short_tmpdir("proj")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def env_for(project: Path, *extra_path: Path, **extra: str) -> dict[str, str]:
    return project_env(project, *extra_path, **(ENVSETTINGS_ENV if project == ENVSETTINGS else {}), **extra)


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def directive_values(conf: str, name: str) -> list[str]:
    """The values of every ``name ...;`` line of a rendered nginx file (good enough for our own output)."""
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{name}\s+([^;]*);", conf, re.M)]


def nginx_size(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    number, unit = re.fullmatch(r"(\d+)([kmgKMG]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * units[unit.lower()]


# -- The corpus itself -------------------------------------------------------------------------------


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Install in your project", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


#: What "..." stands for in the readme project: startproject's apps and the project's own chat app.
README_ELLIPSIS = (
    "'django.contrib.admin', 'django.contrib.auth', 'django.contrib.contenttypes', 'django.contrib.sessions', "
    "'django.contrib.messages', 'django.contrib.staticfiles', \"chat\""
)


def test_readme_project_is_the_readme_snippet() -> None:
    """tests/projects/readme holds README's "Install in your project" blocks as printed (update both together)."""
    settings_block, asgi_block = readme_python_blocks()[:2]
    settings = (README_PROJECT / "myproject" / "settings.py").read_text()
    assert settings_block.replace("...", README_ELLIPSIS, 1) in settings
    assert (README_PROJECT / "myproject" / "asgi.py").read_text() == asgi_block


@pytest.mark.parametrize(
    ("project", "settings"),
    [
        (TUTORIAL, "mysite.settings"),
        (ENVSETTINGS, "envsite.settings.production"),
        (THIRDPARTY, "brokersite.settings"),
        (THIRDPARTY, "brokersite.settings_rabbitmq"),
        (README_PROJECT, "myproject.settings"),
    ],
)
def test_every_project_passes_plain_check(project: Path, settings: str) -> None:
    done = project_manage(project, env_for(project, DJANGO_SETTINGS_MODULE=settings), "check")
    assert done.returncode == 0, output(done)


# -- 1. Lifespan ---------------------------------------------------------------------------------------


@pytest.mark.e2e  # starts a real server
@pytest.mark.parametrize(
    "server",
    [
        "daphne",
        "uvicorn",
        "gunicorn",
        "granian",
        "hypercorn",
    ],
)
def test_app_without_lifespan_serves(server: str, tmp: Path) -> None:
    """envsettings' asgi.py is a ProtocolTypeRouter without "lifespan" (the Channels docs' shape): it must serve."""
    port = free_port()
    workers = "1" if server == "daphne" else "2"
    args = ["--server", server, "--workers", workers, "--bind", f"127.0.0.1:{port}"]
    outcome = start_or_refuse(server, ENVSETTINGS, env_for(ENVSETTINGS), args, ("127.0.0.1", port), tmp, timeout=30)
    try:
        assert not outcome.refused, f"runasgi exited {outcome.returncode}:\n{outcome.output[-3000:]}"
        response = http_get(("127.0.0.1", port), "/")
        assert response.status == 200, response
    finally:
        outcome.proc.stop(timeout=10)


BROKEN_ASGI = "raise RuntimeError('the ASGI module fails at import')\n"


@pytest.mark.e2e  # starts a real server
@pytest.mark.parametrize(
    "server",
    [
        "daphne",
        "uvicorn",
        "gunicorn",
        "granian",
        "hypercorn",
    ],
)
def test_server_that_cannot_start_makes_runasgi_exit_nonzero(server: str, tmp: Path) -> None:
    """An ASGI module that raises at import: runasgi must exit non-zero with the reason, not run on or exit 0."""
    (tmp / "broken_asgi.py").write_text(BROKEN_ASGI)
    settings_variant(
        tmp, "broken_settings", "envsite.settings.production", 'ASGI_APPLICATION = "broken_asgi.application"'
    )
    env = env_for(ENVSETTINGS, tmp, DJANGO_SETTINGS_MODULE="broken_settings")
    port = free_port()
    workers = "1" if server == "daphne" else "2"
    args = ["--server", server, "--workers", workers, "--bind", f"127.0.0.1:{port}"]
    outcome = start_or_refuse(server, ENVSETTINGS, env, args, ("127.0.0.1", port), tmp, timeout=30)
    try:
        assert outcome.refused, f"{server} still runs (and answers) with an app that cannot be imported"
        assert outcome.returncode != 0, outcome.output[-3000:]
        assert "the ASGI module fails at import" in outcome.output
    finally:
        outcome.proc.stop(timeout=10)


# -- 2. The channel layer that runs is the one the plan describes ---------------------------------------


def test_readme_snippet_gives_a_channel_layer() -> None:
    code = (
        "import django; django.setup(); import myproject.asgi; from channels.layers import get_channel_layer; "
        "print(type(get_channel_layer()).__name__)"
    )
    env = env_for(README_PROJECT, DJANGO_SETTINGS_MODULE="myproject.settings")
    done = subprocess.run([PYTHON, "-c", code], cwd=README_PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, output(done)
    assert done.stdout.strip() != "NoneType", "get_channel_layer() is None: the first group_add crashes"


#: README's settings as printed before issue 12 (REDIS_URL, no CHANNEL_LAYERS), whatever README says now.
NO_LAYER = """
globals().pop("CHANNEL_LAYERS", None)
DEPLOYKIT = {"WEBSOCKET_ROUTES": "chat.routing", "REDIS_URL": "redis://127.0.0.1:6379/0"}
"""


def test_check_reports_the_missing_channel_layer(tmp: Path) -> None:
    settings_variant(tmp, "no_layer", "myproject.settings", NO_LAYER)
    env = env_for(README_PROJECT, tmp, DJANGO_SETTINGS_MODULE="no_layer")
    done = project_manage(README_PROJECT, env, "check", "--deploy", "--fail-level", "ERROR")
    assert done.returncode != 0, output(done)
    assert "CHANNEL_LAYERS" in done.stderr, output(done)


@pytest.mark.e2e  # starts a real server
def test_runasgi_refuses_several_processes_without_a_channel_layer(tmp: Path) -> None:
    settings_variant(tmp, "no_layer", "myproject.settings", NO_LAYER)
    env = env_for(README_PROJECT, tmp, DJANGO_SETTINGS_MODULE="no_layer")
    port = free_port()
    args = ["--server", "daphne", "--processes", "2", "--bind", f"127.0.0.1:{port}"]
    outcome = start_or_refuse("runasgi", README_PROJECT, env, args, ("127.0.0.1", port), tmp, timeout=30)
    outcome.proc.stop(timeout=10)
    assert outcome.refused, "runasgi started 2 processes whose group messages go nowhere"
    assert outcome.returncode != 0
    assert "CHANNEL_LAYERS" in outcome.output


def test_systemd_allow_list_admits_the_redis_the_app_uses(tmp: Path) -> None:
    body = """
CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                              "CONFIG": {"hosts": [("10.0.0.5", 6379)]}}}
DEPLOYKIT = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
"""
    settings_variant(tmp, "two_layers", "mysite.settings", body)
    env = env_for(TUTORIAL, tmp, DJANGO_SETTINGS_MODULE="two_layers")
    done = project_manage(TUTORIAL, env, "deployconfig", "systemd")
    if done.returncode != 0:
        # Refusing the contradiction is fine too: it names the settings.
        assert "CHANNEL_LAYERS" in done.stderr and "REDIS_URL" in done.stderr, output(done)
        return
    allow = [line for line in done.stdout.splitlines() if line.startswith("IPAddressAllow=")]
    deny = [line for line in done.stdout.splitlines() if line.startswith("IPAddressDeny=")]
    assert not deny or any("10.0.0.5" in line or "any" in line.split("=", 1)[1].split() for line in allow), allow


# -- 3. Third-party channel layers ------------------------------------------------------------------------


def test_channels_target_writes_no_redis_hosts_under_a_postgres_layer() -> None:
    done = project_manage(THIRDPARTY, env_for(THIRDPARTY), "deployconfig", "channels")
    assert "redis://" not in done.stdout, output(done)


def test_systemd_allow_list_admits_a_rabbitmq_broker() -> None:
    env = env_for(THIRDPARTY, DJANGO_SETTINGS_MODULE="brokersite.settings_rabbitmq")
    done = project_manage(THIRDPARTY, env, "deployconfig", "systemd")
    assert done.returncode == 0, output(done)
    allow = " ".join(line for line in done.stdout.splitlines() if line.startswith("IPAddressAllow="))
    deny = any(line.startswith("IPAddressDeny=") for line in done.stdout.splitlines())
    assert not deny or "10.1.2.3" in allow or " any" in f" {allow}", allow


def test_plan_says_what_it_could_not_tell_about_an_unknown_layer(tmp: Path) -> None:
    """An unknown BACKEND (the project's own class) with a broker URL in CONFIG: never described as Redis."""
    body = """
CHANNEL_LAYERS = {"default": {"BACKEND": "brokersite.layers.BrokerLayer",
                              "CONFIG": {"url": "amqp://broker.internal:5672/"}}}
"""
    settings_variant(tmp, "own_layer", "brokersite.settings_rabbitmq", body)
    env = env_for(THIRDPARTY, tmp, DJANGO_SETTINGS_MODULE="own_layer")
    done = project_manage(THIRDPARTY, env, "deployconfig", "channels")
    assert "redis://" not in done.stdout, output(done)
    assert "brokersite.layers.BrokerLayer" in done.stdout + done.stderr, output(done)


# -- 4. runasgi starts a configuration that will crash at runtime --------------------------------------


@pytest.mark.e2e  # starts a real server
def test_runasgi_stops_on_a_layer_that_drops_idle_websockets(tmp: Path) -> None:
    port = free_port()
    args = ["--server", "daphne", "--bind", f"127.0.0.1:{port}"]
    outcome = start_or_refuse("runasgi", TUTORIAL, env_for(TUTORIAL), args, ("127.0.0.1", port), tmp, timeout=30)
    outcome.proc.stop(timeout=10)
    assert outcome.refused, "runasgi started; every WebSocket idle for 5 s will be dropped"
    assert outcome.returncode != 0
    assert "socket_timeout" in outcome.output or "CHANNEL_LAYERS" in outcome.output, outcome.output[-2000:]


# -- 5. A hand-run runasgi: who can reach the socket ----------------------------------------------------


@pytest.mark.e2e  # starts a real server
@pytest.mark.parametrize(
    "server",
    [
        "uvicorn",
        "daphne",
    ],
)
def test_hand_run_socket_is_not_reachable_by_other_users(server: str, tmp: Path) -> None:
    runtime = tmp / "run" / "app"
    sock = runtime / "app.sock"
    args = ["--server", server, "--workers", "1", "--uds", str(sock)]
    # The readme project: build_application() answers lifespan, so item 1 does not get in the way.
    env = env_for(README_PROJECT)
    outcome = start_or_refuse(server, README_PROJECT, env, args, str(sock), tmp, timeout=30)
    try:
        assert not outcome.refused, outcome.output[-3000:]
        dir_mode = stat.S_IMODE(runtime.stat().st_mode)
        sock_mode = stat.S_IMODE(sock.stat().st_mode)
        print(f"{server}: runtime dir {oct(dir_mode)}, socket {oct(sock_mode)}")
        # Another user connects when they can search the directory and write the socket.
        others_reach = bool(dir_mode & stat.S_IXOTH) and bool(sock_mode & stat.S_IWOTH)
        printed = project_manage(README_PROJECT, env, "runasgi", *args, "--print-command").stdout
        trusts_everyone = "'*'" in printed or '"*"' in printed or server == "daphne"
        assert not (others_reach and trusts_everyone), (
            f"runtime dir {oct(dir_mode)}, socket {oct(sock_mode)}, and the server trusts forwarded headers "
            f"from everyone: {printed}"
        )
    finally:
        outcome.proc.stop(timeout=10)


# -- 6. SQLite under the generated unit --------------------------------------------------------------


def test_systemd_unit_can_write_the_sqlite_database() -> None:
    done = project_manage(ENVSETTINGS, env_for(ENVSETTINGS), "deployconfig", "systemd")
    if done.returncode != 0:
        assert "DATABASES" in done.stderr, output(done)
        return
    writable = " ".join(
        line.split("=", 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith(("ReadWritePaths=", "StateDirectory="))
    ).split()
    db_dir = str(ENVSETTINGS)
    assert any(db_dir == path.lstrip("-") or db_dir.startswith(path.lstrip("-") + "/") for path in writable), (
        f"{db_dir}/db.sqlite3 is not writable under ProtectSystem=strict: {writable}"
    )


# -- 7. Uploads -----------------------------------------------------------------------------------------

#: A photo from a phone: more than Django's in-memory thresholds (2.5 MB), far below anything it refuses.
UPLOAD_BYTES = 5 * 1024 * 1024


def test_nginx_body_limit_lets_file_uploads_through() -> None:
    done = project_manage(ENVSETTINGS, env_for(ENVSETTINGS), "deployconfig", "nginx")
    assert done.returncode == 0, output(done)
    sizes = [nginx_size(v) for v in directive_values(done.stdout, "client_max_body_size")]
    assert sizes, done.stdout
    assert all(size == 0 or size > UPLOAD_BYTES for size in sizes), sizes


# -- 8. No catch-all server -----------------------------------------------------------------------------


def test_nginx_has_a_catch_all_that_closes_foreign_hosts() -> None:
    done = project_manage(TUTORIAL, env_for(TUTORIAL), "deployconfig", "nginx")
    assert done.returncode == 0, output(done)
    assert any("default_server" in v for v in directive_values(done.stdout, "listen")), done.stdout
    assert "444" in directive_values(done.stdout, "return"), done.stdout


def test_nginx_tls_redirect_goes_to_a_configured_name() -> None:
    args = [
        "deployconfig",
        "nginx",
        "--tls-certificate",
        "/etc/letsencrypt/live/app.example.com/fullchain.pem",
        "--tls-certificate-key",
        "/etc/letsencrypt/live/app.example.com/privkey.pem",
        # DNS names only: with an IP address among them (no SNI), the catch-all cannot reject handshakes.
        "--domain",
        "app.example.com",
    ]
    done = project_manage(ENVSETTINGS, env_for(ENVSETTINGS), *args)
    assert done.returncode == 0, output(done)
    redirects = [v for v in directive_values(done.stdout, "return") if v.startswith("301")]
    assert redirects, done.stdout
    assert all("$host" not in v and "$http_host" not in v for v in redirects), redirects
    assert any(v == "on" for v in directive_values(done.stdout, "ssl_reject_handshake")), done.stdout


# -- 9. INSTALL.md order and environment ----------------------------------------------------------------


def install_md(tmp: Path, project: Path, *args: str, **env: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    out = tmp / "deploy"
    done = project_manage(project, env_for(project, **env), "deployconfig", "all", "-o", str(out), *args)
    assert done.returncode == 0, output(done)
    return (out / "INSTALL.md").read_text(), done


def first_line(text: str, pattern: str) -> int:
    for number, line in enumerate(text.splitlines()):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"no line matches {pattern!r} in:\n{text}")


def test_install_md_prepares_settings_before_the_first_manage_py(tmp: Path) -> None:
    text, _ = install_md(tmp, ENVSETTINGS)
    first_manage = first_line(text, r"manage\.py ")
    assert first_line(text, r"install .*\benv\b") < first_manage, "the env file comes after manage.py"
    assert first_line(text, r"install -d .*static_collected") < first_line(text, r"collectstatic"), (
        "STATIC_ROOT is created after collectstatic"
    )


def test_install_md_names_the_environment_the_settings_read(tmp: Path) -> None:
    text, _ = install_md(tmp, ENVSETTINGS)
    env_file = (tmp / "deploy" / "env").read_text()
    for name in ENVSETTINGS_ENV:
        named = re.compile(rf"(?<![A-Z_]){name}\b")  # SECRET_KEY, not DJANGO_SECRET_KEY
        said = named.search(text) or named.search(env_file)
        assert said, f"{name}: read by the settings, named by neither INSTALL.md nor env"


def test_install_checks_the_requirements_name_deploykit_and_the_server(tmp: Path) -> None:
    # A copy of the project with the requirements file a real project had: old Django, no deploykit, no server.
    project = tmp / "envsettings"
    shutil.copytree(ENVSETTINGS, project, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    (project / "requirements.txt").write_text("Django==2.0\nchannels\nchannels-redis\n")
    out = tmp / "deploy"
    done = project_manage(project, env_for(project, **ENVSETTINGS_ENV), "deployconfig", "all", "-o", str(out))
    said = done.stdout + done.stderr + ((out / "INSTALL.md").read_text() if (out / "INSTALL.md").exists() else "")
    mentions = [line for line in said.splitlines() if "requirements" in line and "deploykit" in line]
    assert mentions, f"nothing says requirements.txt lacks deploykit and uvicorn:\n{output(done)}"


# -- 10. TLS on a first install -------------------------------------------------------------------------


def test_install_md_gets_the_certificate_before_testing_the_tls_site(tmp: Path) -> None:
    text, _ = install_md(
        tmp,
        ENVSETTINGS,
        "--tls-certificate",
        "/etc/letsencrypt/live/app.example.com/fullchain.pem",
        "--tls-certificate-key",
        "/etc/letsencrypt/live/app.example.com/privkey.pem",
        "--acme-webroot",
        "/var/www/acme",
    )
    certbot = first_line(text, r"certbot certonly")
    tls_site_test = [n for n, line in enumerate(text.splitlines()) if "nginx -t" in line and n < certbot]
    # An nginx -t before certbot is fine only for an HTTP-only bootstrap site (which must be written).
    bootstrap = [p.name for p in (tmp / "deploy").iterdir() if "nginx" in p.name and p.name != "nginx.conf"]
    assert not tls_site_test or bootstrap, f"nginx -t on the TLS site before certbot:\n{text}"
    assert "deploy-hook" in text, "no renewal hook reloads nginx after certbot renews"


# -- 11. Typos and contradictions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param('DEPLOYKIT = {"WORKER": 2}', "WORKERS", id="WORKER"),
        pytest.param('DEPLOYKIT = {"SOKET": "/run/mysite/mysite.sock"}', "SOCKET", id="SOKET"),
    ],
)
def test_check_names_the_closest_key_for_a_typo(body: str, expected: str, tmp: Path) -> None:
    settings_variant(tmp, "typo", "mysite.settings", body)
    done = project_manage(TUTORIAL, env_for(TUTORIAL, tmp, DJANGO_SETTINGS_MODULE="typo"), "check", "--deploy")
    said = done.stdout + done.stderr
    typo = body.split('"')[1]
    assert any(typo in line and expected in line for line in said.splitlines()) or (
        typo in said and expected in said
    ), output(done)


def test_socket_and_bind_together_are_reported(tmp: Path) -> None:
    body = 'DEPLOYKIT = {"SOCKET": "/run/mysite/mysite.sock", "BIND": "127.0.0.1:8000"}'
    settings_variant(tmp, "both", "mysite.settings", body)
    env = env_for(TUTORIAL, tmp, DJANGO_SETTINGS_MODULE="both")
    check = project_manage(TUTORIAL, env, "check", "--deploy")
    unit = project_manage(TUTORIAL, env, "deployconfig", "systemd")
    reported = ("BIND" in check.stderr and "SOCKET" in check.stderr) or (unit.returncode != 0 and "BIND" in unit.stderr)
    assert reported, f"{output(check)}\n{output(unit)}"


def test_socket_outside_the_runtime_directory_is_reported(tmp: Path) -> None:
    settings_variant(tmp, "elsewhere", "mysite.settings", 'DEPLOYKIT = {"SOCKET": "/srv/mysite/mysite.sock"}')
    env = env_for(TUTORIAL, tmp, DJANGO_SETTINGS_MODULE="elsewhere")
    check = project_manage(TUTORIAL, env, "check", "--deploy")
    unit = project_manage(TUTORIAL, env, "deployconfig", "systemd")
    if unit.returncode == 0 and any(
        line.startswith("ReadWritePaths=") and "/srv/mysite" in line for line in unit.stdout.splitlines()
    ):
        return  # the unit makes the socket's directory writable: fine
    assert "SOCKET" in check.stderr or (unit.returncode != 0 and "SOCKET" in unit.stderr), (
        f"{output(check)}\n{output(unit)}"
    )


# -- 12. Deploy-only settings take the site down --------------------------------------------------------

BAD_IMAGE = 'DEPLOYKIT = {**DEPLOYKIT, "PYTHON_IMAGE": "python"}'  # no tag or digest


def test_invalid_container_setting_does_not_fail_plain_check(tmp: Path) -> None:
    settings_variant(tmp, "bad_image", "myproject.settings", BAD_IMAGE)
    env = env_for(README_PROJECT, tmp, DJANGO_SETTINGS_MODULE="bad_image")
    done = project_manage(README_PROJECT, env, "check")
    assert done.returncode == 0, output(done)
    # Where it matters, it is still refused.
    dockerfile = project_manage(README_PROJECT, env, "deployconfig", "dockerfile")
    assert dockerfile.returncode != 0 and "PYTHON_IMAGE" in dockerfile.stderr, output(dockerfile)


def test_invalid_container_setting_does_not_break_asgi_import(tmp: Path) -> None:
    settings_variant(tmp, "bad_image", "myproject.settings", BAD_IMAGE)
    env = env_for(README_PROJECT, tmp, DJANGO_SETTINGS_MODULE="bad_image")
    done = subprocess.run(
        [PYTHON, "-c", "import myproject.asgi"], cwd=README_PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, output(done)
