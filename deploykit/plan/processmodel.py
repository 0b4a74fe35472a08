"""The plan's model of what runs besides the web servers (issue 17): background processes, the release, timers.

Facts only: the argv is built from these and the process manager's Python by :func:`deploykit.processes.argv`,
the one place every target and ``runprocess`` take it from.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What a background process is; each kind has its own argv, stop signal and default stop timeout.
PROCESS_KINDS = ("celery-worker", "celery-beat", "runworker", "command")
#: The name ``runprocess`` gives the release, so no background process or timer may take it.
RELEASE = "release"


@dataclass(frozen=True)
class Background:
    """A long-running process from DEPLOYKIT["BACKGROUND_PROCESSES"]: one unit, program, service, Deployment."""

    name: str
    #: NAME-name: the systemd unit, supervisor program, Compose service and Kubernetes object.
    unit: str
    kind: str
    #: What follows the virtualenv's python: ("-m", "celery", ...) or ("-m", "django", COMMAND, ...).
    args: tuple[str, ...]
    #: Processes in parallel (supervisor numprocs, Compose and Deployment replicas); beat: always 1.
    replicas: int
    #: The signal that stops it gracefully (systemd KillSignal=, supervisor stopsignal, Compose stop_signal).
    stop_signal: str
    #: Seconds between that signal and SIGKILL (long enough for Celery's running tasks to finish).
    stop_timeout: int
    #: A directory the process writes (beat's schedule file): systemd StateDirectory=, None for none.
    state_directory: str | None = None

    @property
    def singleton(self) -> bool:
        """Never two at once, not even during a rollout (two beats send every periodic task twice)."""
        return self.kind == "celery-beat"


@dataclass(frozen=True)
class Timer:
    """A management command run on a schedule (DEPLOYKIT["TIMERS"]): systemd .timer, Kubernetes CronJob."""

    name: str
    unit: str
    args: tuple[str, ...]
    #: cron's five fields (the CronJob's schedule) and the same as systemd's OnCalendar=, both in UTC.
    cron: str
    on_calendar: str
    #: Seconds a run may take before it is stopped (RuntimeMaxSec=, activeDeadlineSeconds).
    timeout: int


@dataclass(frozen=True)
class Processes:
    background: tuple[Background, ...] = ()
    #: The release's management commands, in order (DEPLOYKIT["RELEASE_COMMANDS"]); empty: no release.
    release: tuple[tuple[str, ...], ...] = ()
    #: NAME-release: the oneshot unit, the Compose service, the init container.
    release_unit: str = ""
    timers: tuple[Timer, ...] = ()
    #: What the checks compare them with: the default database's vendor (the release's lock, E008),
    #: whether Celery has a broker (W021) and its hard task time limit in seconds (W022).
    database_vendor: str = ""
    celery_broker: bool = False
    celery_task_time_limit: int | None = None

    @property
    def release_process(self) -> Background | None:
        """The release as a process: ``runrelease`` with its steps, which takes the database's lock."""
        if not self.release:
            return None
        args: tuple[str, ...] = ("-m", "django", "runrelease")
        for step in self.release:
            args += ("--step", " ".join(step))
        return Background(RELEASE, self.release_unit, "release", args, 1, "TERM", 0)
