"""Every server's socket is reachable by the proxy's group and by nobody else (issue 14 item 6).

What the systemd unit sets up, without systemd: the server runs in its own group
(no supplementary groups) with UMask=0007, in a socket directory whose group is the
proxy's, mode 2750 (RuntimeDirectoryMode=2750 and the "+" chgrp). A client running
as the proxy's user must connect; one in neither group must not.

The server keeps uid 0 but loses every capability: this machine's interpreter lives
under /root (0700), which an unprivileged uid cannot execute; without capabilities
root's file access is an owner's, and the socket's owner does not matter to the
clients, which are unprivileged (the system python).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploykit.plan import build_plan
from deploykit.servers import get_backend
from tests.procs import REPO, Proc, short_tmpdir, wait_until

pytestmark = [pytest.mark.e2e]

SERVERS = ["uvicorn", "daphne", "gunicorn", "granian", "hypercorn"]
#: The app's own group (the unit's Group=), the proxy's user, a stranger.
APP_GROUP = "nogroup"
SYSTEM_PYTHON = "/usr/bin/python3"
PROXY_USER, PROXY_GROUP = "www-data", "www-data"
STRANGER_UID = 54321

CLIENT = """\
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__)
else:
    s.sendall(b"GET /nowhere HTTP/1.1\\r\\nHost: example.com\\r\\nConnection: close\\r\\n\\r\\n")
    print(s.recv(64).split(b"\\r\\n")[0].decode())
"""


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    root = short_tmpdir("groups")
    root.chmod(0o755)
    path = root / "run"
    path.mkdir()
    shutil.chown(path, "root", PROXY_GROUP)
    path.chmod(0o2750)
    try:
        yield path
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_user(uid: str | int, gid: str | int, argv: list[str]) -> list[str]:
    """``argv`` run as uid:gid with no supplementary groups (what User=/Group= give a service)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]


def as_group_without_capabilities(gid: str, argv: list[str]) -> list[str]:
    drop = ["--inh-caps=-all", "--bounding-set=-all"]
    return ["setpriv", f"--regid={gid}", "--clear-groups", *drop, "--", *argv]


def connect(uid: str | int, gid: str | int, path: Path) -> str:
    argv = as_user(uid, gid, [SYSTEM_PYTHON, "-c", CLIENT, str(path)])
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout.strip()


@pytest.mark.parametrize("server", SERVERS)
def test_proxy_group_connects_and_others_do_not(server: str, socket_dir: Path) -> None:
    sock = socket_dir / "app.sock"
    plan = build_plan({"SERVER": server, "WORKERS": 1, "SOCKET": str(sock), "RUNTIME_DIRECTORY": str(socket_dir)})
    backend = get_backend(plan)
    argv = [sys.executable, *backend.argv()[1:]]
    env = {
        **backend.environment(),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    # UMask=0007 from the unit, then the server as the app's user and group.
    shell = ["sh", "-c", 'umask 0007 && exec "$@"', "server", *argv]
    proc = Proc(f"server-{server}", as_group_without_capabilities(APP_GROUP, shell), log_dir=socket_dir.parent, env=env)
    try:
        wait_until(lambda: proc.alive() and sock.exists(), 40, f"{server}'s socket")
        proxy = wait_until(
            lambda: (r := connect(PROXY_USER, PROXY_GROUP, sock)).startswith("HTTP/") and r, 20, "the proxy's answer"
        )
        stranger = connect(STRANGER_UID, STRANGER_UID, sock)
        mode = oct(sock.stat().st_mode & 0o7777)
        group = sock.group()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proc.log()}") from None
    finally:
        proc.stop(timeout=15)
    print(f"{server}: socket {mode} group {group}; proxy: {proxy!r}; stranger: {stranger!r}")
    assert proxy.startswith("HTTP/1.1 ")
    assert stranger == "PermissionError"
