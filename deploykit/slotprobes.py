"""What ``manage.py redeploy`` looks at (issue 16): a slot's readiness over its own socket, and the connections
still open on a draining slot's sockets (the kernel's own tables, so HTTP requests count as WebSockets do)."""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Sequence

from deploykit.plan import Bind


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def probe(bind: Bind, path: str, timeout: float = 5.0) -> str:
    """``GET path`` at ``bind`` itself (not through the proxy): "200", another status, or the error."""
    conn: http.client.HTTPConnection
    if bind.kind == "unix":
        conn = _UnixConnection(bind.path, timeout)
    else:
        conn = http.client.HTTPConnection(bind.host.strip("[]"), bind.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": "localhost"})
        return str(conn.getresponse().status)
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def open_connections(binds: Sequence[Bind]) -> int:
    """Connections accepted on ``binds`` still open (the kernel's tables: /proc/net/unix, tcp, tcp6)."""
    paths = {b.path for b in binds if b.kind == "unix"}
    ports = {b.port for b in binds if b.kind == "tcp"}
    count = 0
    if paths:
        with open("/proc/net/unix", encoding="ascii", errors="replace") as table:
            for line in table:
                parts = line.split()
                # St 03: connected; an accepted socket carries its listener's path.
                if len(parts) >= 8 and parts[5] == "03" and parts[7] in paths:
                    count += 1
    for name in ("/proc/net/tcp", "/proc/net/tcp6") if ports else ():
        if not os.path.exists(name):
            continue
        with open(name, encoding="ascii") as table:
            for line in table.readlines()[1:]:
                parts = line.split()
                # st 01: established, on the slot's port (local address ...:PORT in hex).
                if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) in ports:
                    count += 1
    return count
