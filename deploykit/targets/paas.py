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


def platform_kind(plan: Plan) -> str:
    return plan.platform.kind or "a platform"


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


def release_command(plan: Plan) -> str:
    return " && ".join(shell_command(argv) for argv in plan.platform.release)


def background_commands(plan: Plan) -> list[tuple[str, str]]:
    """(process type, command) of every background process of the plan."""
    return [(p.name, shell_command(p.argv)) for p in plan.platform.background]


class Procfile(Target):
    name = "procfile"
    description = "Procfile (Heroku, Dokku, honcho): release (migrate), web (runasgi on $PORT), background processes"
    template = "deploykit/procfile/Procfile"
    file_name = "Procfile"
    tool = "honcho"
    platforms = frozenset({"heroku"})

    def context(self) -> dict[str, object]:
        plan = self.plan
        processes = [("release", release_command(plan)), ("web", web_command(plan)), *background_commands(plan)]
        names = [name for name, _ in processes]
        duplicate = {n for n in names if names.count(n) > 1}
        if duplicate:
            # django/channels#1189: a second `web:` line replaces the first; the router reaches one.
            raise SpecError("background processes", sorted(duplicate), "each needs its own process type name")
        return {"plan": plan, "lines": [quoting.procfile_line(name, command) for name, command in processes]}

    def applies(self) -> bool:
        return self.plan.platform.kind in self.platforms

    def validate(self, content: str, workdir: Path) -> None:
        honcho = self.require_tool()
        path = workdir / self.filename
        path.write_text(content, encoding="utf-8")
        run_tool([honcho, "-f", str(path), "-d", str(workdir), "check"], cwd=workdir)
