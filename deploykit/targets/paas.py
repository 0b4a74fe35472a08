"""What the PaaS targets share (Procfile, render.yaml, fly.toml), and the Procfile itself.

On a platform the router is the proxy and the port comes in ``$PORT``, so the web process is
``manage.py runasgi --bind 0.0.0.0:$PORT`` with the platform's trust: runasgi then builds the same
server argv as everywhere else, at run time, from the same settings. What only fits a host of ours
(a supervisor-owned socket, one port per process) is overridden on that command line.
"""

from __future__ import annotations

from pathlib import Path

from deploykit import quoting
from deploykit.exceptions import SpecError
from deploykit.plan import Plan
from deploykit.targets.base import Target
from deploykit.targets.tooling import run_tool

MANAGE = ("python", "manage.py")


def web_argv_words(plan: Plan) -> list[str]:
    """The web command's words, each already a shell word: ``$PORT`` and WEB_CONCURRENCY expand at run time."""
    words = [quoting.shell(a) for a in (*MANAGE, "runasgi")]
    if plan.wsgi is not None:
        # One web process type on one port: the ASGI server answers HTTP too (a note says so).
        words += ["--role", "websocket"]
    words += ["--bind", '"0.0.0.0:$PORT"']
    if plan.process_manager.kind != "systemd":
        # supervisor would own the socket and hand fd 0 over: nothing of that runs on a platform.
        words += ["--process-manager", "systemd"]
    if plan.server.processes != 1:
        # One port per process runs past $PORT, which is the only one the router reaches.
        words += ["--processes", "1"]
    if plan.platform.forwarded_allow_ips:
        words += ["--forwarded-allow-ips", quoting.shell(",".join(plan.platform.forwarded_allow_ips))]
    if plan.platform.web_workers is not None:
        words += ["--workers", f'"${{WEB_CONCURRENCY:-{plan.platform.web_workers}}}"']
    return words


def web_command(plan: Plan) -> str:
    """The web process's command line, for a POSIX shell (Heroku, Render, honcho run it with one)."""
    return " ".join(web_argv_words(plan))


def shell_command(argv: tuple[str, ...] | list[str]) -> str:
    return quoting.shell_argv(argv)


def platform_argv(args: tuple[str, ...]) -> tuple[str, ...]:
    """A process's arguments (what follows the virtualenv's python) as the platform runs them.

    The platform's ``python`` is on PATH; ``-m django`` becomes ``manage.py``, which sets the
    settings module itself (a Heroku app need not have DJANGO_SETTINGS_MODULE in its config).
    """
    if args[:2] == ("-m", "django"):
        return (*MANAGE, *args[2:])
    return ("python", *args)


def release_command(plan: Plan) -> str | None:
    """The release (``runrelease`` with RELEASE_COMMANDS' steps, under the database's lock); None without one.

    The image's release (``container.processes``): static files are collected by the build on every
    platform (Heroku's buildpack, Render's buildCommand, Fly's image), and Heroku keeps nothing a
    release phase writes to disk.
    """
    release = plan.container.processes.release_process
    return None if release is None else shell_command(platform_argv(release.args))


def background_commands(plan: Plan) -> list[tuple[str, str, int]]:
    """(process type, command, replicas) of every background process of the plan (state under /tmp)."""
    return [(p.name, shell_command(platform_argv(p.args)), p.replicas) for p in plan.container.processes.background]


def timer_commands(plan: Plan) -> list[tuple[str, str, str]]:
    """(name, cron schedule in UTC, command) of every timer."""
    return [(t.name, t.cron, shell_command(platform_argv(t.args))) for t in plan.container.processes.timers]


class Procfile(Target):
    name = "procfile"
    description = "Procfile (Heroku, Dokku, honcho): release (migrate), web (runasgi on $PORT), background processes"
    template = "deploykit/procfile/Procfile"
    file_name = "Procfile"
    tool = "honcho"
    platforms = frozenset({"heroku"})

    def context(self) -> dict[str, object]:
        plan = self.plan
        release = release_command(plan)
        processes = [
            *([("release", release)] if release is not None else []),
            ("web", web_command(plan)),
            *((name, command) for name, command, _ in background_commands(plan)),
        ]
        names = [name for name, _ in processes]
        duplicate = {n for n in names if names.count(n) > 1}
        if duplicate:
            # django/channels#1189: a second `web:` line replaces the first; the router reaches one.
            raise SpecError(
                'DEPLOYKIT["BACKGROUND_PROCESSES"]', sorted(duplicate), "web and release are the Procfile's own names"
            )
        return {"plan": plan, "lines": [quoting.procfile_line(name, command) for name, command in processes]}

    def applies(self) -> bool:
        return self.plan.platform.kind in self.platforms

    def validate(self, content: str, workdir: Path) -> None:
        honcho = self.require_tool()
        path = workdir / self.filename
        path.write_text(content, encoding="utf-8")
        run_tool([honcho, "-f", str(path), "-d", str(workdir), "check"], cwd=workdir)
