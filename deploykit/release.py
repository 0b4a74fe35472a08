"""The release step: management commands run under the database's own lock, so two never run at once.

A release may start in several places at the same moment: the init container of every new pod, the
release unit of every host, two supervisor deploys. Django's ``migrate`` is not safe against itself (both
see migration 0002 unapplied; one fails half-way, or both apply it). Each release takes an exclusive lock
in the database the migrations change, so wherever the database is shared the lock is too: the second
waits, then finds nothing left to do (``migrate`` says "No migrations to apply", ``collectstatic`` copies
nothing). PostgreSQL: a session advisory lock; MySQL/MariaDB: ``GET_LOCK``; SQLite: ``flock`` on a file
beside the database (an SQLite database is on one machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import shlex
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: The lock's name, the same in every project: migrations of one database must not overlap, whatever runs them.
LOCK_NAME = "deploykit-release"
#: PostgreSQL advisory locks take a 64-bit key.
PG_LOCK_KEY = zlib.crc32(LOCK_NAME.encode())
#: Seconds MySQL's GET_LOCK waits per attempt (it needs a bound; the loop waits on).
MYSQL_WAIT = 60


#: The databases whose lock :func:`database_lock` takes (Django's ``connection.vendor``).
LOCKED_VENDORS = ("postgresql", "mysql", "sqlite")


def engine_vendor(engine: str) -> str:
    """The vendor of a DATABASES ENGINE as Django's backends name it, without importing the driver."""
    for suffix, vendor in (("postgresql", "postgresql"), ("postgis", "postgresql"), ("mysql", "mysql")):
        if engine.endswith(suffix):
            return vendor
    return "sqlite" if engine.endswith(("sqlite3", "spatialite")) else engine


class NoLock(Exception):
    """The database has no lock deploykit knows how to take."""


@contextlib.contextmanager
def database_lock(connection: Any) -> Iterator[str]:
    """Hold the release lock of ``connection``'s database; yields what the lock is (for the log)."""
    vendor = connection.vendor
    if vendor not in LOCKED_VENDORS:
        raise NoLock(
            f"deploykit has no release lock for the {vendor} database: run the release from one place only "
            "(or set RELEASE_COMMANDS to [] and run the commands yourself)"
        )
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [PG_LOCK_KEY])
        try:
            yield f"PostgreSQL advisory lock {PG_LOCK_KEY}"
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [PG_LOCK_KEY])
    elif vendor == "mysql":
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT GET_LOCK(%s, %s)", [LOCK_NAME, MYSQL_WAIT])
                if cursor.fetchone()[0] == 1:
                    break
        try:
            yield f"MySQL GET_LOCK({LOCK_NAME!r})"
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [LOCK_NAME])
    else:
        name = str(connection.settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:") or not name:
            yield "none (an in-memory SQLite database is this process's own)"
            return
        path = Path(f"{name}.{LOCK_NAME}.lock")
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield f"flock {path}"
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def run(steps: list[list[str]], call: Callable[..., Any], log: Callable[[str], None]) -> None:
    """Run each step (a management command's argv) with ``call`` (call_command) while holding the lock."""
    from django.db import DEFAULT_DB_ALIAS, connections

    start = time.monotonic()
    log(f"release: waiting for the lock of database {DEFAULT_DB_ALIAS!r}")
    with database_lock(connections[DEFAULT_DB_ALIAS]) as what:
        log(f"release: holding {what} after {time.monotonic() - start:.1f}s")
        for step in steps:
            log(f"release: {shlex.join(step)}")
            call(*step)
    log(f"release: done in {time.monotonic() - start:.1f}s")
