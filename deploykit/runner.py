"""Starting the server process: the socket left by a crashed run, exec, autoreload.

Imports nothing from :mod:`deploykit.servers`: the command builds the argv and
environment with a backend and hands them here (the seam tests swap).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping

from deploykit.plan import Plan, Server, WsgiServer

#: The socket's directory when runasgi creates it: the proxy's group may enter, others not.
SOCKET_DIRECTORY_MODE = 0o750


class SocketInUse(Exception):
    pass


class SocketExposed(Exception):
    pass


def prepare_socket(plan: Plan, server: Server | WsgiServer | None = None) -> None:
    """Remove a stale unix socket; refuse when something listens on it or other users could reach it.

    ``server``: the plan's ASGI server unless given (the WSGI one of a split plan).
    """
    server = plan.server if server is None else server
    if server.listen.kind != "unix":
        return
    for bind in server.addresses:
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
    directory = os.path.dirname(server.address.path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=SOCKET_DIRECTORY_MODE)
        os.chmod(directory, SOCKET_DIRECTORY_MODE)  # makedirs' mode is filtered by the umask
        _give_to_proxy_group(directory, plan.process_manager.proxy_group)
    # Servers create their sockets 0666 (uvicorn, daphne): the directory is
    # what keeps other local users out. Trusting X-Forwarded-* from every peer
    # on a socket they can reach lets them forge the client address.
    if server.proxy_headers and "*" in server.forwarded_allow_ips and os.stat(directory).st_mode & 0o005:
        raise SocketExposed(
            f"{directory} is open to other users (mode {stat.S_IMODE(os.stat(directory).st_mode):o}) and the server "
            "trusts X-Forwarded-For/-Proto from every peer on its socket: any local user could forge the client "
            f"address. Use a private directory (chmod o-rx {directory}, as systemd's RuntimeDirectoryMode=0750 "
            'does) or set DEPLOYKIT["FORWARDED_ALLOW_IPS"].'
        )


def _give_to_proxy_group(directory: str, group: str) -> None:
    """The folder's group is the proxy's (as systemd's unit makes it), so the proxy can reach the socket.

    Only root can give a file to a group it is not in; a user running runasgi
    by hand keeps its own (the proxy then needs that group).
    """
    import grp

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return  # no such group here (a container, a development machine)
    if os.geteuid() == 0 or gid in os.getgroups():
        os.chown(directory, -1, gid)
        # setgid: what the server creates inside keeps the proxy's group.
        os.chmod(directory, SOCKET_DIRECTORY_MODE | stat.S_ISGID)


def server_environment(plan: Plan, extra: Mapping[str, str]) -> dict[str, str]:
    """The exec's environment: this one, the settings module, the backend's variables."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = plan.app.settings_module
    # The server imports the project from the working directory, as under
    # systemd's WorkingDirectory=.
    path = [plan.process_manager.working_directory]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.update(extra)
    return env


def run(plan: Plan, argv: list[str], environment: Mapping[str, str], *, reload: bool = False) -> None:
    """Become the server (exec: signals reach it directly), or supervise it under Django's autoreloader."""
    env = server_environment(plan, environment)
    os.chdir(plan.process_manager.working_directory)
    if reload:
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
