"""The processes section (issue 17): background processes, the release step and timers, read and validated.

Names become units, programs, Compose services and Kubernetes objects (NAME-name), commands become argv
words (``deploykit.processes.argv``): both are checked here, with the setting in every message.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from deploykit import validators as v
from deploykit.conf import django_setting
from deploykit.exceptions import SpecError
from deploykit.plan import schedule
from deploykit.plan.model import App, ChannelLayer, ProcessManager
from deploykit.plan.processmodel import PROCESS_KINDS, RELEASE, Background, Processes, Timer
from deploykit.plan.reader import Reader

#: Seconds a Celery worker gets on TERM (warm shutdown: running tasks finish) before SIGKILL.
CELERY_STOP_TIMEOUT = 300
#: Seconds a timer's run may take by default.
TIMER_TIMEOUT = 3600
#: Channel names runworker can listen on (channels' own rule, without process-specific "!" names).
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,99}$")
_KEYS = {
    "celery-worker": {"kind", "app", "concurrency", "queues", "args", "replicas", "stop_timeout"},
    "celery-beat": {"kind", "app", "args", "replicas", "stop_timeout"},
    "runworker": {"kind", "channels", "replicas", "stop_timeout"},
    "command": {"kind", "command", "replicas", "stop_timeout"},
}


def _command(value: Any, label: str) -> tuple[str, ...]:
    """A management command with its arguments ("clearsessions", or a list of words): it must exist."""
    from django.core.management import get_commands

    words = shlex.split(value) if isinstance(value, str) else value
    if isinstance(words, str) or not isinstance(words, Sequence) or not words:
        raise SpecError(label, value, "must be a management command: 'clearsessions' or ['clearsessions', ...]")
    argv = tuple(v.argument(word, label) for word in words)
    if argv[0] not in get_commands():
        raise SpecError(label, value, f"there is no management command {argv[0]!r} in this project")
    return argv


def _words(value: Any, label: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise SpecError(label, value, f"must be a list naming at least one {what}")
    for word in value:
        if not isinstance(word, str) or not pattern.fullmatch(word):
            raise SpecError(label, value, f"{word!r} is not a {what} (letters, digits, . _ -)")
    return tuple(value)


def _entries(r: Reader, key: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(name, label, entry) of a dict setting of named entries; names are unit-name parts."""
    value = r.get(key)
    label = r.label(key)
    if not isinstance(value, Mapping):
        raise SpecError(label, value, "must be a dict of names to entries")
    found = []
    for name, entry in value.items():
        v.identifier(name, label)
        if name == RELEASE:
            raise SpecError(label, name, f"{RELEASE!r} is reserved for the release step (RELEASE_COMMANDS)")
        if not isinstance(entry, Mapping):
            raise SpecError(f"{label}[{name!r}]", entry, "must be a dict")
        found.append((name, f'{label}["{name}"]', entry))
    return found


def _background(
    name: str, label: str, entry: Mapping[str, Any], app: App, pm: ProcessManager, layer: ChannelLayer, state: str
) -> Background:
    kind = v.choice(entry.get("kind"), f'{label}["kind"]', PROCESS_KINDS)
    unknown = sorted(set(entry) - _KEYS[kind])
    if unknown:
        raise SpecError(label, dict(entry), f"unknown keys for {kind}: {', '.join(map(str, unknown))}")
    replicas = v.integer(entry.get("replicas", 1), f'{label}["replicas"]', minimum=1, maximum=1000)
    stop = pm.stop_timeout
    state_directory = None
    if kind in ("celery-worker", "celery-beat"):
        celery_app = v.dotted_path(entry.get("app"), f'{label}["app"]')
        args: tuple[str, ...] = (
            "-m",
            "celery",
            "--app",
            celery_app,
            kind.removeprefix("celery-"),
            "--loglevel",
            "INFO",
        )
        if kind == "celery-worker":
            # TERM is Celery's warm shutdown: no new tasks, running ones finish. Give them time.
            stop = CELERY_STOP_TIMEOUT
            if "concurrency" in entry:
                args += ("--concurrency", str(v.integer(entry["concurrency"], f'{label}["concurrency"]', minimum=1)))
            if "queues" in entry:
                queues = _words(entry["queues"], f'{label}["queues"]', _CHANNEL_RE, "queue name")
                args += ("--queues", ",".join(queues))
        else:
            if replicas != 1:
                raise SpecError(
                    f'{label}["replicas"]', replicas, "celery beat must run once: two send every periodic task twice"
                )
            # The schedule's state is written, and the working directory is read-only.
            state_directory = f"{state}/{pm.name}-{name}" if state.startswith("/var/lib") else state
            args += ("--schedule", f"{state_directory}/celerybeat-schedule")
        args += tuple(v.argument(a, f'{label}["args"]') for a in entry.get("args", ()))
    elif kind == "runworker":
        if not layer.crosses_processes:
            raise SpecError(
                label,
                dict(entry),
                "runworker receives from the channel layer: an in-memory layer (or none) never hands it a message "
                "sent by another process; use channels_redis",
            )
        channels = _words(entry.get("channels"), f'{label}["channels"]', _CHANNEL_RE, "channel name")
        args = ("-m", "django", "runworker", *channels)
    else:
        args = ("-m", "django", *_command(entry.get("command"), f'{label}["command"]'))
    if "stop_timeout" in entry:
        stop = v.integer(entry["stop_timeout"], f'{label}["stop_timeout"]', minimum=1, maximum=86400)
    return Background(
        name=name,
        unit=f"{pm.name}-{name}",
        kind=kind,
        args=args,
        replicas=replicas,
        # asgiref's StatelessServer (runworker) exits cleanly on KeyboardInterrupt only: TERM would kill it.
        stop_signal="INT" if kind == "runworker" else "TERM",
        stop_timeout=stop,
        state_directory=state_directory,
    )


def _release(r: Reader, *, static_at_build: bool, has_static: bool) -> tuple[tuple[str, ...], ...]:
    value = r.get("RELEASE_COMMANDS")
    label = r.label("RELEASE_COMMANDS")
    if value is None:
        value = ["migrate --noinput", *(["collectstatic --noinput"] if has_static else [])]
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(label, value, "must be a list of management commands, e.g. ['migrate --noinput']")
    steps = tuple(_command(step, f"{label}[{i}]") for i, step in enumerate(value))
    if static_at_build:
        # The Dockerfile collects static files into the image at build time.
        steps = tuple(s for s in steps if s[0] != "collectstatic")
    return steps


def _timer(name: str, label: str, entry: Mapping[str, Any], pm: ProcessManager) -> Timer:
    unknown = sorted(set(entry) - {"command", "schedule", "timeout"})
    if unknown:
        raise SpecError(label, dict(entry), f"unknown keys: {', '.join(map(str, unknown))}")
    cron, calendar = schedule.parse(entry.get("schedule"), f'{label}["schedule"]')
    return Timer(
        name=name,
        unit=f"{pm.name}-{name}",
        args=("-m", "django", *_command(entry.get("command"), f'{label}["command"]')),
        cron=cron,
        on_calendar=calendar,
        timeout=v.integer(entry.get("timeout", TIMER_TIMEOUT), f'{label}["timeout"]', minimum=1, maximum=86400),
    )


def build_processes(
    r: Reader, app: App, pm: ProcessManager, layer: ChannelLayer, *, has_static: bool, in_image: bool = False
) -> Processes:
    """The section for the host (state under /var/lib) or, ``in_image``, for the containers (state in /tmp)."""
    state = "/tmp" if in_image else "/var/lib"
    background = tuple(
        _background(name, label, entry, app, pm, layer, state)
        for name, label, entry in _entries(r, "BACKGROUND_PROCESSES")
    )
    timers = tuple(_timer(name, label, entry, pm) for name, label, entry in _entries(r, "TIMERS"))
    taken = {b.name for b in background}
    for timer in timers:
        if timer.name in taken:
            raise SpecError(r.label("TIMERS"), timer.name, "is already the name of a background process")
    return Processes(
        background=background,
        release=_release(r, static_at_build=in_image, has_static=has_static),
        release_unit=f"{pm.name}-{RELEASE}",
        timers=timers,
        **_celery_and_database(),
    )


def _celery_and_database() -> dict[str, Any]:
    from deploykit.release import engine_vendor

    databases = django_setting("DATABASES") or {}
    default = databases.get("default") if isinstance(databases, Mapping) else None
    engine = str(default.get("ENGINE", "")) if isinstance(default, Mapping) else ""
    limit = django_setting("CELERY_TASK_TIME_LIMIT")
    return {
        "database_vendor": engine_vendor(engine),
        "celery_broker": bool(django_setting("CELERY_BROKER_URL")),
        "celery_task_time_limit": None
        if limit is None
        else v.integer(int(limit) if isinstance(limit, float) else limit, "CELERY_TASK_TIME_LIMIT", minimum=1),
    }
