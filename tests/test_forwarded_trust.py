"""X-Forwarded-For/-Proto are believed from the plan's trust list only, in the process that serves (issue 13).

granian and hypercorn cannot trust forwarded headers themselves: their argv
loads ``deploykit.proxy:application``, whose middleware applies them for the
plan's FORWARDED_ALLOW_IPS. A TCP address given on the command line makes a plan
that trusts loopback only (127.0.0.1, ::1); settings without BIND make one that
binds a unix socket and trusts every peer ("*"). The server must obey the first.

On Linux loopback the whole of 127/8 is local: a client bound to 127.0.0.2 is a
peer outside the trust list, 127.0.0.1 a peer inside it. ``/whoami/`` answers
what the app believes (REMOTE_ADDR, request.scheme, is_secure, SCRIPT_NAME).

The servers run ``tests.trust_settings`` (production without
SECURE_PROXY_SSL_HEADER, so request.scheme is the server's scope scheme); the
SECURE_PROXY_SSL_HEADER tests run ``testproject.production`` itself. No Redis: ``/whoami/`` does not use
the channel layer, and the readiness path (which does) is not waited for.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.parsers import systemd_env_file, systemd_environment, systemd_exec, systemd_unit
from tests.procs import (
    STARTUP_TIMEOUT,
    Proc,
    free_port,
    http_get,
    manage,
    short_tmpdir,
    stack_env,
    start_server,
    wait_ready,
    wait_until,
)

# One worker under -n (--dist loadgroup): the module-scoped servers start once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-trust")]

#: A peer outside the trust list of a plan that binds TCP; TRUSTED is inside it.
UNTRUSTED = "127.0.0.2"
TRUSTED = "127.0.0.1"
FORGED_ADDRESS = "6.6.6.6"
FORGED = {"X-Forwarded-For": FORGED_ADDRESS, "X-Forwarded-Proto": "https"}
#: Not /chat: testproject routes /chat/<room>/, so /chat/whoami/ would be a chat room.
PREFIX = "/sub"

TRUST_HOLE = pytest.mark.xfail(
    strict=True,
    reason="issue 13 hole: deploykit.proxy rebuilds the plan from settings in the server process "
    "(unix socket, FORWARDED_ALLOW_IPS '*'), not the command line's (127.0.0.1, ::1)",
)
ROOT_PATH_HOLE = pytest.mark.xfail(
    strict=True,
    reason="issue 13 hole: gunicorn's argv has no root path and its worker rebuilds the plan from settings",
)
DAPHNE_HOLE = pytest.mark.xfail(
    strict=True,
    reason="issue 13: daphne trusts X-Forwarded-* from every peer; runasgi on a public port neither refuses "
    "nor runs W001 (a deploy check, on the settings' plan)",
)
UVICORN_PREFIX_HOLE = pytest.mark.xfail(
    strict=True,
    reason="not in issue 13: uvicorn (and gunicorn's uvicorn worker) prepend --root-path to the request path, "
    "and the nginx target forwards the path whole (proxy_pass without a URI): /sub/whoami/ becomes /sub/sub/whoami/",
)
PRODUCTION = "testproject.production"


class Run(NamedTuple):
    """One ``manage.py runasgi`` on a loopback TCP port given on the command line."""

    server: str
    args: tuple[str, ...] = ()
    settings: str = "tests.trust_settings"
    #: The address to bind and connect to (::1: IPv6 loopback, whose only peer address is ::1).
    host: str = "127.0.0.1"
    #: DEPLOYKIT_* knobs of testproject.production (DEPLOYKIT_DRAIN_TIMEOUT=0: the drain wrapper is not served).
    env: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        settings = [] if self.settings == Run._field_defaults["settings"] else [self.settings.rpartition(".")[2]]
        host = [] if self.host == Run._field_defaults["host"] else ["ipv6" if ":" in self.host else self.host]
        env = [f"{k.removeprefix('DEPLOYKIT_').lower()}{v}" for k, v in self.env]
        return "-".join([self.server, *(a.strip("-/") for a in self.args), *settings, *host, *env])


@dataclass
class Served:
    name: str
    proc: Proc
    port: int
    argv_line: str = ""
    host: str = "127.0.0.1"

    def whoami(
        self, *, source: str | None = TRUSTED, headers: dict[str, str] | None = None, path: str = "/whoami/"
    ) -> dict[str, Any]:
        response = http_get((self.host, self.port), path, headers, timeout=10, source=source)
        assert response.status == 200, f"{path} from {source}: {response.status}\n{self.proc.log()[-3000:]}"
        seen: dict[str, Any] = response.json()
        print(f"{self.name} {path} from {source} with {headers}: {seen}")
        return seen

    def status(self, path: str) -> int:
        return http_get((self.host, self.port), path, timeout=10).status


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = short_tmpdir("trust")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def environment(workdir: Path, settings: str) -> dict[str, str]:
    # DEPLOYKIT_SOCKET (stack_env): the settings' plan binds a unix socket, as in production.
    return stack_env(workdir, "redis://127.0.0.1:1/0", workdir / "static", DJANGO_SETTINGS_MODULE=settings)


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return environment(workdir, "tests.trust_settings")


@pytest.fixture(scope="module")
def runasgi(request: pytest.FixtureRequest, workdir: Path) -> Iterator[Served]:
    """``runasgi --server S --workers 1 --bind 127.0.0.1:PORT [args]``; one per parameter, for the module's tests."""
    run: Run = request.param
    port = free_port()
    bind = f"[{run.host}]:{port}" if ":" in run.host else f"{run.host}:{port}"
    args = ["--server", run.server, "--workers", "1", "--bind", bind, *run.args]
    proc = start_server(str(run), {**environment(workdir, run.settings), **dict(run.env)}, args, workdir)
    try:
        wait_ready(proc, (run.host, port), "/whoami/", timeout=STARTUP_TIMEOUT)
        argv_line = next((line for line in proc.log().splitlines() if " -m " in line), "")
        print(f"\n{run}: {argv_line}")
        yield Served(str(run), proc, port, argv_line, run.host)
    finally:
        proc.stop()


# -- 1. runasgi on a TCP port from the command line ------------------------------------------------

#: daphne is not here: it trusts every peer by design (test_daphne_on_a_public_port_is_refused_or_warned).
TRUST_RUNS = [
    Run("granian"),
    Run("hypercorn"),
    Run("uvicorn"),
    Run("gunicorn"),
]


@pytest.mark.parametrize("runasgi", TRUST_RUNS, indirect=True, ids=str)
def test_a_peer_outside_the_trust_list_cannot_forge_its_address_or_scheme(runasgi: Served) -> None:
    seen = runasgi.whoami(source=UNTRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (UNTRUSTED, "http", False)


@pytest.mark.parametrize(
    "runasgi", [Run(s) for s in ("granian", "hypercorn", "uvicorn", "gunicorn")], indirect=True, ids=str
)
def test_the_trusted_proxy_is_believed(runasgi: Served) -> None:
    """The other half: the headers are applied at all (a middleware that ignored them would pass the test above)."""
    seen = runasgi.whoami(source=TRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (FORGED_ADDRESS, "https", True)


#: Without the drain (DRAIN_TIMEOUT 0) the argv loads deploykit.proxy:application, or the project's application.
NO_DRAIN = (("DEPLOYKIT_DRAIN_TIMEOUT", "0"),)

PRODUCTION_RUNS = [
    # uvicorn (and gunicorn's uvicorn worker) ignore an untrusted peer's X-Forwarded-* for the scope but leave
    # the headers in the request: the wrapper in front of the application drops them.
    Run("uvicorn", settings=PRODUCTION),
    Run("gunicorn", settings=PRODUCTION),
    Run("uvicorn", settings=PRODUCTION, env=NO_DRAIN),
    Run("gunicorn", settings=PRODUCTION, env=NO_DRAIN),
    # deploykit.proxy applies the trust list for these two, and drops an untrusted peer's headers.
    Run("granian", settings=PRODUCTION),
    Run("hypercorn", settings=PRODUCTION),
]


@pytest.mark.parametrize("runasgi", PRODUCTION_RUNS, indirect=True, ids=str)
def test_production_settings_do_not_let_an_untrusted_peer_claim_https(runasgi: Served) -> None:
    """The server ignores the forged headers from 127.0.0.2, and Django's SECURE_PROXY_SSL_HEADER must not
    read them either (it reads the request's X-Forwarded-Proto, whoever sent it)."""
    seen = runasgi.whoami(source=UNTRUSTED, headers=FORGED)
    assert seen["remote_addr"] == UNTRUSTED  # the server's part holds
    assert (seen["scheme"], seen["is_secure"]) == ("http", False)


@pytest.mark.parametrize("runasgi", PRODUCTION_RUNS, indirect=True, ids=str)
def test_production_settings_believe_the_trusted_proxy(runasgi: Served) -> None:
    """The other half, with SECURE_PROXY_SSL_HEADER: the proxy's X-Forwarded-Proto and -For still reach the app."""
    seen = runasgi.whoami(source=TRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (FORGED_ADDRESS, "https", True)


#: IPv6 loopback has one address, ::1: a trust list without it makes ::1 the peer outside it.
IPV6_RUNS = [
    Run(server, ("--forwarded-allow-ips", "127.0.0.1"), settings=PRODUCTION, host="::1")
    for server in ("uvicorn", "gunicorn")
]


@pytest.mark.parametrize("runasgi", IPV6_RUNS, indirect=True, ids=str)
def test_an_ipv6_peer_outside_the_trust_list_cannot_claim_https(runasgi: Served) -> None:
    seen = runasgi.whoami(source=None, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == ("::1", "http", False)


def test_daphne_on_a_public_port_is_refused_or_warned(env: dict[str, str], workdir: Path) -> None:
    """daphne has no trust list: on a non-loopback port, runasgi must refuse it or say W001.

    The process is stopped as soon as runasgi refused or printed the argv it execs
    (0.0.0.0 is public for well under a second).
    """
    port = free_port()
    proc = start_server("daphne-public", env, ["--server", "daphne", "--bind", f"0.0.0.0:{port}"], workdir)
    try:
        wait_until(lambda: not proc.alive() or "-m daphne " in proc.log(), STARTUP_TIMEOUT, "runasgi to refuse or exec")
        exited_by_itself = not proc.alive()
    finally:
        stopped = proc.stop()
    output = proc.log()
    print(f"daphne on 0.0.0.0 (exited by itself: {exited_by_itself}, code {stopped.returncode}):\n{output}")
    refused = exited_by_itself and stopped.returncode != 0 and "-m daphne " not in output
    assert refused or "deploykit.W001" in output


# -- 2. the unit deployconfig systemd writes, started by hand --------------------------------------


@pytest.fixture(scope="module")
def systemd(request: pytest.FixtureRequest, env: dict[str, str], workdir: Path) -> Iterator[Served]:
    """ExecStart= of ``deployconfig systemd --server S --bind 0.0.0.0:PORT``, with the environment the unit gives it.

    Environment= lines, then the EnvironmentFile= that ``deployconfig env`` writes
    (it overrides them, as in systemd), over what the operator adds to that file
    (the secret key and this machine's values). No DEPLOYKIT_* knobs: the settings'
    plan binds the default unix socket.
    """
    server: str = request.param
    port = free_port()
    flags = ["--server", server, "--workers", "1", "--bind", f"0.0.0.0:{port}"]
    unit = manage(env, "deployconfig", "systemd", *flags)
    env_file = manage(env, "deployconfig", "env", *flags)
    service = [(key, value) for section, key, value in systemd_unit(unit) if section == "Service"]
    (exec_start,) = [value for key, value in service if key == "ExecStart"]
    (working_directory,) = [value for key, value in service if key == "WorkingDirectory"]
    assert [key for key, _ in service].count("EnvironmentFile") == 1, unit
    argv = systemd_exec(exec_start)
    unit_environment: dict[str, str] = {}
    for key, value in service:
        if key == "Environment":
            unit_environment.update(systemd_environment(value))
    operator = ("DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "REDIS_URL", "STATIC_ROOT", "DEMO_DATABASE", "PYTHONUNBUFFERED")
    process_env = {
        "PATH": os.environ["PATH"],
        **{key: env[key] for key in operator},
        **unit_environment,
        **systemd_env_file(env_file),
    }
    print(f"\nsystemd {server}: {argv}\nEnvironment= {unit_environment}\nenv file {systemd_env_file(env_file)}")
    proc = Proc(f"systemd-{server}", argv, log_dir=workdir, env=process_env, cwd=Path(working_directory))
    try:
        wait_ready(proc, ("127.0.0.1", port), "/whoami/", timeout=STARTUP_TIMEOUT)
        yield Served(f"systemd-{server}", proc, port, exec_start)
    finally:
        proc.stop()


SYSTEMD_RUNS = [
    "granian",
    "hypercorn",
    "uvicorn",
]


@pytest.mark.parametrize("systemd", SYSTEMD_RUNS, indirect=True)
def test_systemd_unit_on_a_public_port_ignores_forged_headers_from_outside(systemd: Served) -> None:
    seen = systemd.whoami(source=UNTRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (UNTRUSTED, "http", False)


@pytest.mark.parametrize("systemd", ["granian", "hypercorn", "uvicorn"], indirect=True)
def test_systemd_unit_believes_the_local_proxy(systemd: Served) -> None:
    seen = systemd.whoami(source=TRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (FORGED_ADDRESS, "https", True)


# -- 3. the root path from the command line ----------------------------------------------------------

ROOT_PATH_RUNS = [
    Run("uvicorn", ("--root-path", PREFIX)),
    Run("gunicorn", ("--root-path", PREFIX)),
    Run("hypercorn", ("--root-path", PREFIX)),
    Run("granian", ("--root-path", PREFIX)),
    Run("daphne", ("--root-path", PREFIX)),
]


@pytest.mark.parametrize("runasgi", ROOT_PATH_RUNS, indirect=True, ids=str)
def test_the_command_line_root_path_reaches_the_app(runasgi: Served) -> None:
    """No FORCE_SCRIPT_NAME: only ``--root-path`` tells Django its prefix (SCRIPT_NAME, what reverse() prepends).

    /whoami/ is the path as a proxy that strips the prefix sends it: what
    uvicorn's --root-path expects (it prepends the root path); daphne, granian
    and hypercorn answer it the same.
    """
    seen = runasgi.whoami(path="/whoami/")
    assert seen["script_name"] == PREFIX


PREFIXED_RUNS = [
    Run("uvicorn", ("--root-path", PREFIX)),
    Run("gunicorn", ("--root-path", PREFIX)),
    Run("hypercorn", ("--root-path", PREFIX)),
    Run("granian", ("--root-path", PREFIX)),
    Run("daphne", ("--root-path", PREFIX)),
]


@pytest.mark.parametrize("runasgi", PREFIXED_RUNS, indirect=True, ids=str)
def test_the_prefixed_path_as_the_nginx_target_forwards_it(runasgi: Served) -> None:
    """nginx's ``location /sub/ { proxy_pass http://upstream; }`` passes /sub/whoami/ on unchanged."""
    status = runasgi.status(f"{PREFIX}/whoami/")
    print(f"{runasgi.name}: GET {PREFIX}/whoami/ -> {status}")
    assert status == 200
    assert runasgi.whoami(path=f"{PREFIX}/whoami/")["script_name"] == PREFIX


# -- 4. the WSGI side of split serving (issue 15) ------------------------------------------------------


@pytest.fixture(scope="module")
def wsgi_side(request: pytest.FixtureRequest, workdir: Path) -> Iterator[Served]:
    """``runasgi --role http`` with WSGI_SERVER=S on a loopback port: trust loopback only, like the ASGI side."""
    server: str = request.param
    port = free_port()
    env = environment(workdir, "tests.trust_settings")
    env.update(DEPLOYKIT_WSGI_SERVER=server, DEPLOYKIT_WSGI_WORKERS="1", DEPLOYKIT_WSGI_BIND=f"127.0.0.1:{port}")
    args = ["--role", "http", "--workers", "1", "--bind", f"127.0.0.1:{free_port()}"]
    proc = start_server(f"wsgi-{server}", env, args, workdir)
    try:
        wait_ready(proc, ("127.0.0.1", port), "/whoami/", timeout=STARTUP_TIMEOUT)
        argv_line = next((line for line in proc.log().splitlines() if " -m " in line), "")
        print(f"\nwsgi {server}: {argv_line}")
        yield Served(f"wsgi-{server}", proc, port, argv_line)
    finally:
        proc.stop()


@pytest.mark.parametrize("wsgi_side", ["granian", "gunicorn"], indirect=True)
def test_wsgi_side_ignores_forged_headers_from_outside(wsgi_side: Served) -> None:
    seen = wsgi_side.whoami(source=UNTRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (UNTRUSTED, "http", False)
    assert "--interface wsgi" in wsgi_side.argv_line or "gthread" in wsgi_side.argv_line


@pytest.mark.parametrize("wsgi_side", ["granian", "gunicorn"], indirect=True)
def test_wsgi_side_believes_the_trusted_proxy(wsgi_side: Served) -> None:
    seen = wsgi_side.whoami(source=TRUSTED, headers=FORGED)
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (FORGED_ADDRESS, "https", True)


@pytest.fixture(scope="module")
def wsgi_on_unix(request: pytest.FixtureRequest, workdir: Path) -> Iterator[tuple[str, Proc]]:
    """``runasgi --role http`` with WSGI_SERVER=S on the plan's own unix socket (trust "*": no peer address)."""
    server: str = request.param
    runtime = workdir / f"unix-{server}"
    env = environment(workdir, "tests.trust_settings")
    env.update(DEPLOYKIT_WSGI_SERVER=server, DEPLOYKIT_WSGI_WORKERS="1", DEPLOYKIT_RUNTIME_DIRECTORY=str(runtime))
    env["DEPLOYKIT_SOCKET"] = str(runtime / "app.sock")
    # The plan's WSGI socket: RUNTIME_DIRECTORY-http/NAME-http.sock.
    sock = f"{runtime}-http/testproject-http.sock"
    proc = start_server(f"wsgi-unix-{server}", env, ["--role", "http"], workdir)
    try:
        wait_ready(proc, sock, "/whoami/", timeout=STARTUP_TIMEOUT)
        yield sock, proc
    finally:
        proc.stop()


@pytest.mark.parametrize("wsgi_on_unix", ["granian", "gunicorn"], indirect=True)
def test_wsgi_side_on_a_unix_socket_takes_the_address_the_proxy_appended(wsgi_on_unix: tuple[str, Proc]) -> None:
    """On a unix socket only the proxy is a peer (the folder is 0750), so every peer is trusted; a proxy that
    appends to X-Forwarded-For (Apache's mod_proxy) passes the client's forged value on, and the WSGI side
    takes the address the proxy wrote (the rightmost), never the client's own claim."""
    sock, proc = wsgi_on_unix
    as_appended = {"X-Forwarded-For": f"{FORGED_ADDRESS}, {UNTRUSTED}", "X-Forwarded-Proto": "http"}
    response = http_get(sock, "/whoami/", as_appended, timeout=10)
    assert response.status == 200, proc.log()[-3000:]
    seen = response.json()
    print(f"{proc.name} over {sock} with {as_appended}: {seen}")
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (UNTRUSTED, "http", False)


@pytest.fixture(scope="module")
def asgi_on_unix(request: pytest.FixtureRequest, workdir: Path) -> Iterator[tuple[str, Proc]]:
    """``runasgi --server S`` on the plan's own unix socket, testproject.production (trust "*": no peer address)."""
    server: str = request.param
    runtime = workdir / f"asgi-unix-{server}"
    env = environment(workdir, PRODUCTION)
    env.update(DEPLOYKIT_RUNTIME_DIRECTORY=str(runtime), DEPLOYKIT_SOCKET=str(runtime / "app.sock"))
    proc = start_server(f"asgi-unix-{server}", env, ["--server", server, "--workers", "1"], workdir)
    try:
        wait_ready(proc, env["DEPLOYKIT_SOCKET"], "/whoami/", timeout=STARTUP_TIMEOUT)
        yield env["DEPLOYKIT_SOCKET"], proc
    finally:
        proc.stop()


@pytest.mark.parametrize("asgi_on_unix", ["uvicorn", "gunicorn"], indirect=True)
def test_on_a_unix_socket_the_proxy_is_believed_with_production_settings(asgi_on_unix: tuple[str, Proc]) -> None:
    """Only the proxy reaches the socket (its folder is 0750): "*", nothing is dropped, no wrapper is served."""
    sock, proc = asgi_on_unix
    response = http_get(sock, "/whoami/", FORGED, timeout=10)
    assert response.status == 200, proc.log()[-3000:]
    seen = response.json()
    print(f"{proc.name} over {sock} with {FORGED}: {seen}")
    assert (seen["remote_addr"], seen["scheme"], seen["is_secure"]) == (FORGED_ADDRESS, "https", True)
    assert "DEPLOYKIT_SERVER_FORWARDED_ALLOW_IPS" not in proc.log()
