"""Starting the server process: the socket left by a crashed run, exec, autoreload."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import stat
import subprocess
import sys

from deploykit.plan import Plan
from deploykit.servers.base import ServerBackend


class SocketInUse(Exception):
    pass


def prepare_socket(plan: Plan) -> None:
    """Remove a stale unix socket; refuse when something listens on it."""
    if plan.server.listen.kind != "unix":
        return
    for bind in plan.server.addresses:
        path = bind.path
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISSOCK(mode):
            raise SocketInUse(f"{path} exists and is not a socket; refusing to remove it.")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # stale: left by a process that died
            continue
        finally:
            probe.close()
        raise SocketInUse(f"Something is already listening on {path}.")
    directory = os.path.dirname(plan.server.address.path)
    os.makedirs(directory, exist_ok=True)


def server_environment(plan: Plan) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = plan.app.settings_module
    # The server imports the project from the working directory, as under
    # systemd's WorkingDirectory=.
    path = [plan.process_manager.working_directory]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def run(backend: ServerBackend, argv: list[str], *, reload: bool = False) -> None:
    """Become the server (exec: signals reach it directly), or supervise it under autoreload."""
    plan = backend.plan
    env = server_environment(plan)
    os.chdir(plan.process_manager.working_directory)
    if reload and not backend.native_reload:
        _run_with_django_reloader(argv, env)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)


def _die_with_parent() -> None:
    # Linux prctl(PR_SET_PDEATHSIG, SIGTERM): the server must not outlive the
    # reloader process that started it, however that process ends.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


def _run_with_django_reloader(argv: list[str], env: dict[str, str]) -> None:
    from django.utils import autoreload

    def serve() -> None:
        child = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)

        def stop() -> None:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.wait(30)

        atexit.register(stop)
        child.wait()

    autoreload.run_with_reloader(serve)
