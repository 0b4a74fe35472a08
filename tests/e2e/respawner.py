"""What systemd does to a socket-activated service when it restarts it, for tests/e2e/test_socket_activation.py.

``systemd-socket-activate -l ADDRESS python respawner.py STOP_TIMEOUT -- ARGV...`` listens on ADDRESS, and
at the first connection execs this with the socket as fd 3, ``LISTEN_FDS=1`` and ``LISTEN_PID`` set to this
process, as systemd hands a socket to a service. systemd-socket-activate execs its command once; systemd,
though, keeps the socket open in PID 1 while the service stops and starts again, which is the whole point.
This process plays that part, and only that part: it keeps fd 3 open for the whole run (it never accepts on
it), and starts ARGV (the unit's ``ExecStart=``, with this process's environment: the unit's) as the service's
main process, fd 3 inherited and ``LISTEN_PID`` set to that process's pid, as systemd sets it to the main pid
(gunicorn checks it).

On SIGHUP it does what ``systemctl restart`` does to a ``Type=exec``, ``KillMode=mixed`` unit without
``ExecStop=`` (a socket-activated unit has none: tests/test_socket_activation.py): SIGTERM to the
main process, wait until it exits (SIGKILL after STOP_TIMEOUT, the unit's ``TimeoutStopSec=``), SIGKILL what is
left of the service's processes (its process group stands for its cgroup), then start ARGV again at once (a
restart asked for does not wait ``RestartSec=``). On SIGTERM it stops the service and exits. A service that
exits by itself is started again after ``RestartSec=2`` (``Restart=always``).

Run without systemd-socket-activate (the baseline: a server that binds its own socket, today's default unit)
it does the same, and the server binds and unlinks its socket itself. One line per event on stdout:
``started PID``, ``stopped PID SECONDS``, ``exited PID STATUS``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

#: The unit's RestartSec=.
RESTART_SEC = 2.0


def log(line: str) -> None:
    print(line, flush=True)


def start(argv: list[str], activated: bool) -> int:
    pid = os.fork()
    if pid == 0:
        os.setsid()  # the service's own process group: its cgroup here
        if activated:
            os.environ["LISTEN_PID"] = str(os.getpid())
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    log(f"started {pid}")
    return pid


def stop(pid: int, timeout: float) -> None:
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while os.waitpid(pid, os.WNOHANG)[0] == 0:
        if time.monotonic() - began > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    try:
        os.killpg(pid, signal.SIGKILL)  # KillMode=mixed: the rest of the service, once the main process is gone
    except ProcessLookupError:
        pass
    log(f"stopped {pid} {time.monotonic() - began:.2f}")


def main() -> int:
    stop_timeout = float(sys.argv[1])
    assert sys.argv[2] == "--", "usage: respawner.py STOP_TIMEOUT -- ARGV..."
    argv = sys.argv[3:]
    activated = os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") == str(os.getpid())
    if activated:
        os.set_inheritable(3, True)
    asked: list[str] = []
    signal.signal(signal.SIGHUP, lambda *_: asked.append("restart"))
    signal.signal(signal.SIGTERM, lambda *_: asked.append("stop"))
    child = start(argv, activated)
    while True:
        if asked:
            what = asked.pop(0)
            stop(child, stop_timeout)
            if what == "stop":
                return 0
            child = start(argv, activated)
            continue
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            log(f"exited {pid} {status}")
            time.sleep(RESTART_SEC)
            child = start(argv, activated)
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
