"""fly.toml: the image of the dockerfile target on Fly Machines, Fly's proxy in front.

Fly builds the Dockerfile and runs its CMD (the container plan's argv: a TCP bind on the container
port, trusting the private networks Fly's proxy reaches the machine from), so the web process is
the one the image already runs; fly.toml adds the proxy's side: the port, HTTPS, the WebSocket
connection limits, the readiness check, the release step and the background process groups.
"""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from typing import Any

from deploykit import processes
from deploykit.plan import Plan
from deploykit.servers import get_backend
from deploykit.targets.base import Target, ToolMissing, ValidationFailed
from deploykit.targets.docker import PROBE_INTERVAL, PROBE_TIMEOUT, START_PERIOD, health_path

#: Per machine. Fly's proxy counts load by connections or requests (https://fly.io/docs/apps/concurrency/);
#: a WebSocket holds its connection for hours, so connections it is, and its default (soft 20, hard
#: 25) would turn the 26th chat client away from a machine that is idle. One uvicorn process holds
#: a thousand idle sockets in well under its memory (the benchmark's echo ran 1000 over two).
SOFT_LIMIT = 750
HARD_LIMIT = 1000
#: Fly's own ceiling for kill_timeout (https://fly.io/docs/reference/configuration/#kill_timeout).
FLY_MAX_KILL_TIMEOUT = 300

#: The keys https://fly.io/docs/reference/configuration/ documents for what this file writes;
#: there is no published JSON schema to validate against (none on PyPI, npm or Debian).
REQUIRED = {
    "": ("app", "build", "http_service", "kill_signal", "kill_timeout"),
    "http_service": ("internal_port", "force_https", "concurrency", "checks"),
}


def toml_parser() -> Any:
    """tomllib (Python 3.11+), or tomli, its backport, on 3.10."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ToolMissing("fly.toml is checked with tomllib (Python 3.11+) or tomli: pip install tomli")


def fly_commands(plan: Plan) -> tuple[str | None, str, list[tuple[str, str, int]]]:
    """(release, web, [(process group, command, replicas)]) as the image runs them: its python, its CMD.

    The image's processes with the image's python: the argv Compose and Kubernetes run too.
    """
    inside = plan.in_container()
    release = inside.processes.release_process
    background = [(p.name, shlex.join(processes.argv(inside, p)), p.replicas) for p in inside.processes.background]
    return (
        None if release is None else shlex.join(processes.argv(inside, release)),
        shlex.join(get_backend(inside).argv()),
        background,
    )


class Fly(Target):
    name = "fly"
    description = "fly.toml for Fly.io: the Dockerfile's image, release_command (migrate), WebSocket limits, checks"
    template = "deploykit/fly/fly.toml"
    file_name = "fly.toml"
    platforms = frozenset({"fly"})

    def context(self) -> dict[str, object]:
        plan = self.plan
        inside = plan.in_container()
        release, web, background = fly_commands(plan)
        return {
            "plan": plan,
            "container": plan.container,
            "release_command": release,
            "processes": [("app", web), *((name, command) for name, command, _ in background)] if background else [],
            "scaled": [(name, replicas) for name, _, replicas in background],
            "timers": inside.processes.timers,
            "environment": list(plan.process_manager.environment),
            "health_path": health_path(plan),
            # One for every process group: the longest (a Celery worker's warm shutdown), within Fly's ceiling.
            "kill_timeout": min(
                FLY_MAX_KILL_TIMEOUT,
                max(
                    [
                        plan.container.process_manager.stop_timeout,
                        *(p.stop_timeout for p in inside.processes.background),
                    ]
                ),
            ),
            "soft_limit": SOFT_LIMIT,
            "hard_limit": HARD_LIMIT,
            "probe_interval": PROBE_INTERVAL,
            "probe_timeout": PROBE_TIMEOUT,
            "start_period": START_PERIOD,
        }

    def applies(self) -> bool:
        return self.plan.platform.kind in self.platforms

    def validate(self, content: str, workdir: Path) -> None:
        parser = toml_parser()
        try:
            data = parser.loads(content)
        except parser.TOMLDecodeError as exc:
            raise ValidationFailed(f"fly.toml is not TOML: {exc}") from exc
        for table, keys in REQUIRED.items():
            section = data.get(table, {}) if table else data
            missing = [k for k in keys if k not in section]
            if missing:
                raise ValidationFailed(f"fly.toml: [{table or 'top level'}] lacks {', '.join(missing)}")
        if data["kill_timeout"] > FLY_MAX_KILL_TIMEOUT:
            raise ValidationFailed(f"fly.toml: kill_timeout {data['kill_timeout']} is above Fly's 300 s")
