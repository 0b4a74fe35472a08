"""Counters of every server process in one directory, summed at scrape time.

A scrape reaches one worker of one server process; what it reports must be the
service's. Each process maps a small file of 64-bit slots (``PID-TOKEN.counts``)
in ``DEPLOYKIT_SERVER_METRICS_DIR`` and adds to it with a memory write (no
system call, no lock: every slot is written by its own process only, on the
event loop's thread). The process answering a scrape reads every file:
counters are summed over the live processes and the ones that have exited
since the directory was made (a restarted worker's requests still happened),
gauges (open WebSockets) over the live ones only, each with its ``pid``. A
process holds an exclusive ``flock`` on its file for its whole life, so a
reader that can take that lock knows the process is gone, whatever its pid
became. prometheus_client's multiprocess mode works the same way; this is its
idea without its dependency, in the runtime directory systemd empties when the
service stops.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import secrets
from array import array
from dataclasses import dataclass, field

#: Slots per file (8 bytes each); the layout below uses fewer.
SLOTS = 64
SIZE = SLOTS * 8
SUFFIX = ".counts"

#: HTTP requests by method and status class: ``http_slot``.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other")
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
HTTP = 0
WS_OPENED = HTTP + len(METHODS) * len(CLASSES)
#: A gauge: connections accepted and not yet finished, in this process.
WS_OPEN = WS_OPENED + 1
WS_RECEIVED = WS_OPEN + 1
WS_SENT = WS_RECEIVED + 1
GROUP_SENDS = WS_SENT + 1
assert GROUP_SENDS < SLOTS

#: The first slot of each method's classes (the request path adds the class: 0 for 1xx ... 4 for 5xx).
METHOD_BASES = {method: HTTP + i * len(CLASSES) for i, method in enumerate(METHODS)}
OTHER_BASE = METHOD_BASES["other"]
LAST_CLASS = len(CLASSES) - 1


def http_slot(method: str, status: int) -> int:
    """The slot of one answered request; a status outside 100-599 counts as 5xx (the server's own 500)."""
    cls = status // 100 - 1
    return METHOD_BASES.get(method, OTHER_BASE) + (cls if 0 <= cls < LAST_CLASS else LAST_CLASS)


class Store:
    """This process's file: ``counts[slot] += 1`` is the whole cost of counting."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.pid = os.getpid()
        path = os.path.join(directory, f"{self.pid}-{secrets.token_hex(4)}{SUFFIX}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.ftruncate(fd, SIZE)
        # Held until the process exits: readers tell the live processes by it.
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.path = path
        self._fd = fd
        self._map = mmap.mmap(fd, SIZE)
        self.counts = memoryview(self._map).cast("q")


class Private:
    """This process's counters in its own memory, when the directory cannot be written."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.counts = memoryview(bytearray(SIZE)).cast("q")


@dataclass
class Collected:
    """What every file of the directory says."""

    #: Counter slots summed over every process, live or exited.
    totals: list[int] = field(default_factory=lambda: [0] * SLOTS)
    #: The live processes' slots, by pid.
    live: dict[int, list[int]] = field(default_factory=dict)
    #: Files of processes that have exited.
    exited: int = 0

    def add(self, other: Collected) -> None:
        self.totals = [a + b for a, b in zip(self.totals, other.totals, strict=True)]
        self.live.update(other.live)
        self.exited += other.exited


def _alive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def collect(directory: str) -> Collected:
    found = Collected()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.name.endswith(SUFFIX):
            continue
        try:
            with open(entry.path, "rb") as file:
                data = file.read(SIZE)
                alive = _alive(file.fileno())
        except OSError:
            continue
        if len(data) != SIZE:
            continue  # being created
        values = array("q", data).tolist()
        for slot, value in enumerate(values):
            found.totals[slot] += value
        if alive:
            found.live[int(entry.name.partition("-")[0])] = values
        else:
            found.exited += 1
    return found


def own(private: Private | None) -> Collected:
    """What a process without the directory reports: itself."""
    found = Collected()
    if private is not None:
        values = private.counts.tolist()
        found.totals = list(values)
        found.live[private.pid] = values
    return found
