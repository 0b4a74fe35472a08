"""What runs besides the web servers (issue 17), under systemd and supervisor: background processes, the
release step and timers. Compose and Kubernetes write theirs in their own files (compose.py, kubernetes.py).

systemd runs the release exactly once per start: the app's units, the WSGI unit and every background unit
require it (``RequiredBy=``, made by ``systemctl enable``) and start after it (``Before=``); the job engine
merges their start requests into one job of the oneshot unit. ``RemainAfterExit=yes`` keeps a restart of
the app (or a crash restart) from running it again; a deploy restarts the release unit, and systemd then
restarts every unit that requires it after it. Supervisor has no order between programs: INSTALL.md runs the
release in the foreground before ``supervisorctl restart``. Across hosts (or pods) the release command takes
the database's own lock (deploykit.release), so two releases never run at once.
"""

from __future__ import annotations

from pathlib import Path

from deploykit import processes, quoting
from deploykit.plan import Plan
from deploykit.plan.processmodel import Background, Timer
from deploykit.rendering import render
from deploykit.targets.base import RenderedFile, Target, ValidationFailed
from deploykit.targets.supervisor import parse
from deploykit.targets.systemd import MAX_EXPOSURE, Systemd, exposure, verify
from deploykit.targets.tooling import run_tool

#: Why each kind stops the way it does (written next to KillSignal=/stopsignal).
STOP_REASONS = {
    "celery-worker": "TERM is Celery's warm shutdown: no new tasks, running ones finish, then SIGKILL after this.",
    "celery-beat": "TERM: beat saves its schedule and exits.",
    "runworker": "INT: runworker (asgiref's StatelessServer) exits cleanly on KeyboardInterrupt only; TERM kills it.",
    "command": "TERM, then SIGKILL after this.",
    "release": "TERM, then SIGKILL after this.",
}
KIND_NAMES = {
    "celery-worker": "Celery worker",
    "celery-beat": "Celery beat (one instance only: two would send every periodic task twice)",
    "runworker": "Channels runworker",
    "command": "a management command",
}


def host_processes(plan: Plan) -> bool:
    p = plan.processes
    return bool(p.background or p.release or p.timers)


class SystemdProcesses(Target):
    name = "systemd-processes"
    description = "systemd: NAME-release.service (oneshot, once before the app), a unit per background process, timers"
    template = "deploykit/systemd/process"
    tool = "systemd-analyze"
    file_name = "{name}-release.service"

    def _base(self) -> dict[str, object]:
        # The web unit's own context: user, paths, allow list, ProtectHome.
        web = Systemd(self.plan)
        pm = self.plan.process_manager
        return web._common(pm.runtime_directory, pm.ip_address_allow)

    def _dependents(self) -> list[str]:
        """The units that run the new code: they require the release and start after it."""
        units = [f"{self.plan.process_manager.name}.service"]
        if self.plan.wsgi is not None:
            units.append(f"{self.plan.wsgi.name}.service")
        return units + [f"{b.unit}.service" for b in self.plan.processes.background]

    def _service(self, process: Background | Timer, **context: object) -> str:
        base = self._base()
        kind = process.kind if isinstance(process, Background) else "command"
        return render(
            self.template,
            {
                **base,
                "unit": process.unit,
                "name": process.name,
                "argv": processes.argv(self.plan, process),
                "stop_signal": getattr(process, "stop_signal", "TERM"),
                # A timer's command and the release stop like the web server (STOP_TIMEOUT).
                "stop_timeout": process.stop_timeout
                if isinstance(process, Background) and process.kind != "release"
                else self.plan.process_manager.stop_timeout,
                "stop_why": STOP_REASONS[kind],
                **context,
            },
        )

    def files(self) -> list[RenderedFile]:
        plan = self.plan
        p = plan.processes
        base = self._base()
        files = []
        release = p.release_process
        if release is not None:
            dependents = self._dependents()
            content = self._service(
                release,
                what="the release: " + ", ".join(" ".join(step) for step in p.release),
                install_hint=f"then: systemctl enable {release.unit} (before starting the app)",
                comments=[
                    "Runs exactly once before the new code serves: the units below require it and start after it.",
                    f"Deploy new code: systemctl restart {release.unit}, which restarts them after it.",
                ],
                type="oneshot",
                remain=True,
                before=dependents,
                required_by=dependents,
                # collectstatic writes STATIC_ROOT; migrate an SQLite database's folder.
                read_write_paths=[x for x in dict.fromkeys((plan.site.static_root, *plan.app.write_paths)) if x],
            )
            files.append(RenderedFile(f"{release.unit}.service", content, self.mode))
        for process in p.background:
            content = self._service(
                process,
                what=KIND_NAMES[process.kind],
                install_hint=f"then: systemctl daemon-reload && systemctl enable --now {process.unit}",
                comments=[],
                type="exec",
                restart=True,
                state_directory=process.state_directory.removeprefix("/var/lib/") if process.state_directory else None,
                wanted_by="multi-user.target",
            )
            files.append(RenderedFile(f"{process.unit}.service", content, self.mode))
        for timer in p.timers:
            content = self._service(
                timer,
                what=f"{timer.args[2]} on a schedule ({timer.cron} UTC)",
                install_hint=f"started by {timer.unit}.timer",
                comments=[],
                type="oneshot",
                runtime_max=timer.timeout,
            )
            files.append(RenderedFile(f"{timer.unit}.service", content, self.mode))
            timer_context = {**base, "unit": timer.unit, "cron": timer.cron, "on_calendar": timer.on_calendar}
            files.append(
                RenderedFile(f"{timer.unit}.timer", render("deploykit/systemd/timer", timer_context), self.mode)
            )
        return files

    def render(self) -> str:
        return "".join(f.content for f in self.files())

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd" and host_processes(self.plan)

    def validate(self, content: str, workdir: Path) -> None:
        self.check(self.files(), workdir)

    def check(self, files: list[RenderedFile], workdir: Path) -> None:
        self.require_tool()
        paths = []
        for file in files:
            path = workdir / file.name
            path.write_text(file.content, encoding="utf-8")
            paths.append(path)
            if file.name.endswith(".service"):
                score = exposure(path)
                if score > MAX_EXPOSURE:
                    raise ValidationFailed(
                        f"systemd-analyze security rates {file.name} {score} (more than {MAX_EXPOSURE})"
                    )
        for timer in self.plan.processes.timers:
            run_tool(["systemd-analyze", "calendar", timer.on_calendar])
        if paths:
            verify(paths)


class SupervisorProcesses(Target):
    name = "supervisor-processes"
    description = "supervisor: a [program:NAME-name] per background process (the release runs before, INSTALL.md)"
    template = "deploykit/supervisor/processes.conf"
    tool = "supervisord"
    file_name = "{name}-processes.conf"

    def context(self) -> dict[str, object]:
        plan = self.plan
        return {
            "plan": plan,
            "pm": plan.process_manager,
            "programs": [
                {
                    "process": b,
                    "what": KIND_NAMES[b.kind],
                    "argv": processes.argv(plan, b),
                    "stop_why": STOP_REASONS[b.kind],
                }
                for b in plan.processes.background
            ],
            "environment": quoting.supervisor_environment(processes.environment(plan)),
            "release": processes.argv(plan, plan.processes.release_process) if plan.processes.release else None,
            "timers": [(t, processes.argv(plan, t)) for t in plan.processes.timers],
        }

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "supervisor" and bool(self.plan.processes.background)

    def require_tool(self) -> str:
        return "supervisor.options"

    def validate(self, content: str, workdir: Path) -> None:
        parse(content, workdir)
