from __future__ import annotations

import contextlib
import getpass
import grp
import io
import os
import pwd
import re
import shlex
from pathlib import Path

from deploykit import quoting
from deploykit.rendering import render
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from deploykit.targets.base import Target, ToolMissing, ValidationFailed
from deploykit.targets.env import contract_environment, server_environment

#: A minimal supervisord.conf around the section, with every path in the temp dir.
_CHECK_CONF = """\
[supervisord]
logfile={workdir}/supervisord.log
pidfile={workdir}/supervisord.pid
childlogdir={workdir}

[include]
files = {section}
"""


def _exists(lookup: object, name: str) -> bool:
    try:
        lookup(name)  # type: ignore[operator]
    except KeyError:
        return False
    return True


def parse(content: str, workdir: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """Load ``content`` with supervisor's own parser; (name, argv, environment) of every process it would run.

    The argv is what supervisor execs: it splits ``command`` with shlex after
    expanding ``%(...)s``. A user or group the section names that does not
    exist on this machine (INSTALL.md creates it) is checked as the current one.
    """
    try:
        from supervisor.options import ServerOptions  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ToolMissing("supervisor is not installed (pip install supervisor); cannot check the file") from exc
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name

    def local(match: re.Match[str]) -> str:
        key, owner, sep, grp_name = match.group(1), match.group(2), match.group(3), match.group(4) or ""
        owner = owner if _exists(pwd.getpwnam, owner) else user
        if sep:
            grp_name = grp_name if _exists(grp.getgrnam, grp_name) else group
        return f"{key}={owner}{sep}{grp_name}"

    checked = re.sub(r"(?m)^(user|socket_owner)=([^:\n]+)(:?)([^\n]*)$", local, content)
    section = workdir / "program.conf"
    section.write_text(checked, encoding="utf-8")
    conf = workdir / "supervisord.conf"
    conf.write_text(_CHECK_CONF.format(workdir=workdir, section=section), encoding="utf-8")
    options = ServerOptions()
    errors = io.StringIO()
    try:
        # supervisor reports a bad file on stderr, then exits 2.
        with contextlib.redirect_stderr(errors):
            options.realize(args=["-c", str(conf)])
    except SystemExit as exc:
        raise ValidationFailed(errors.getvalue().strip() or f"supervisor exited with status {exc.code}") from exc
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    processes = []
    for group_config in options.process_group_configs:
        for process in group_config.process_configs:
            processes.append((process.name, shlex.split(process.command), dict(process.environment or {})))
    if not processes:
        raise ValidationFailed("supervisor found no program in the file")
    return processes


class Supervisor(Target):
    name = "supervisor"
    description = "supervisor [fcgi-program]: one socket (0660, the proxy's group), numprocs servers on fd 0"
    template = "deploykit/supervisor/program.conf"
    tool = "supervisord"

    file_name = "{name}.conf"

    def context(self) -> dict[str, object]:
        plan = self.plan
        pm = plan.process_manager
        context: dict[str, object] = {
            "plan": plan,
            "pm": pm,
            "program": pm.name,
            "kind": "ASGI",
            "backend": plan.server.backend,
            "address": plan.server.address,
            "backlog": plan.server.backlog,
            "numprocs": plan.server.processes,
            "argv": get_backend(plan).argv(),
            "environment": quoting.supervisor_environment(server_environment(plan) + contract_environment(plan)),
            "stopwaitsecs": pm.stop_timeout,
            "drain_argv": get_backend(plan).drain_argv(explicit=True),
            "drain_timeout": plan.server.drain_timeout,
        }
        if plan.wsgi is not None:
            context.update(serves="WebSockets", partner=plan.wsgi.name, other="HTTP")
        return context

    def wsgi_context(self) -> dict[str, object]:
        """The WSGI server's program (split serving): gunicorn on supervisor's socket as fd 0, like the ASGI one."""
        plan = self.plan
        assert plan.wsgi is not None
        backend = get_wsgi_backend(plan)
        environment = server_environment(plan) + sorted(backend.environment().items())
        return {
            **self.context(),
            # No WebSockets to drain.
            "drain_argv": None,
            "program": plan.wsgi.name,
            "kind": "WSGI",
            "backend": plan.wsgi.backend,
            "address": plan.wsgi.address,
            "backlog": plan.wsgi.backlog,
            # One process: its workers and threads are inside.
            "numprocs": 1,
            "argv": backend.argv(),
            "environment": quoting.supervisor_environment(environment),
            "serves": "HTTP",
            "partner": plan.process_manager.name,
            "other": "WebSockets",
        }

    def render(self) -> str:
        if self.plan.slots:
            # Two slots (issue 16): each slot's programs, from the plan as that slot runs it; one file.
            return "\n".join(Supervisor(self.plan.for_slot(slot.name)).render() for slot in self.plan.slots)
        content = super().render()
        if self.plan.wsgi is not None:
            # One file, two programs: installed and reread together, restarted apart.
            content += "\n" + render(self.template, self.wsgi_context())
        return content

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "supervisor"

    def require_tool(self) -> str:
        return "supervisor.options"  # the parser is the Python package, checked on import

    def validate(self, content: str, workdir: Path) -> None:
        parse(content, workdir)
