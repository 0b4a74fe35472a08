from __future__ import annotations

import re
from pathlib import Path

from deploykit.exceptions import SpecError
from deploykit.plan.model import SYSTEMD_LISTEN_FD
from deploykit.rendering import render
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from deploykit.targets.base import RenderedFile, Target, ValidationFailed
from deploykit.targets.env import contract_environment
from deploykit.targets.tooling import run_tool

#: What ``systemd-analyze security`` may rate the service at most (0 safest, 10 exposed).
MAX_EXPOSURE = 1.0
_EXPOSURE_RE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def exposure(unit: Path) -> float:
    """``systemd-analyze security --offline=yes`` rating of ``unit``."""
    output = run_tool(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)])
    match = _EXPOSURE_RE.search(output)
    if match is None:
        raise ValidationFailed(f"no exposure level in systemd-analyze's output:\n{output}")
    return float(match.group(1))


def verify(units: list[Path]) -> None:
    """``systemd-analyze verify``: syntax, and that ExecStart= binaries exist (here: the plan's virtualenv)."""
    run_tool(["systemd-analyze", "verify", "--man=no", *[str(u) for u in units]])


class Systemd(Target):
    name = "systemd"
    description = "systemd service: the server's exact argv, hardened (systemd-analyze security <= 1.0)"
    template = "deploykit/systemd/service"
    tool = "systemd-analyze"

    file_name = "{name}.service"

    def context(self) -> dict[str, object]:
        plan = self.plan
        pm = plan.process_manager
        backend = get_backend(plan)
        activated = plan.server.listen.kind == "fd"
        context = self._common(plan.process_manager.runtime_directory, plan.process_manager.ip_address_allow)
        if activated:
            # The socket unit owns the socket and its folder: a RuntimeDirectory= here would delete both
            # whenever the service stops (a restart too) and chown the socket to the app's group when it
            # starts, shutting the proxy out (systemd/systemd#8635). The server creates no file there.
            context.update(runtime_directory=None)
        context.update(
            unit=pm.name,
            kind="ASGI",
            backend=plan.server.backend,
            argv=backend.argv(),
            reload_signal=backend.reload_signal,
            drain_argv=backend.drain_argv() if plan.server.drains_on_stop else None,
            manual_drain_argv=backend.drain_argv(explicit=True),
            drain_timeout=plan.server.drain_timeout,
            socket_unit=f"{pm.name}.socket" if activated else None,
            environment=[f"{k}={val}" for k, val in contract_environment(plan)],
        )
        if plan.wsgi is not None:
            context.update(serves="WebSockets", partner=plan.wsgi.name, other="HTTP")
        return context

    def wsgi_context(self) -> dict[str, object]:
        """The unit of the WSGI server (split serving): the same hardening, its own argv and runtime directory."""
        plan = self.plan
        assert plan.wsgi is not None
        backend = get_wsgi_backend(plan)
        context = self._common(plan.wsgi.runtime_directory, plan.wsgi.ip_address_allow)
        context.update(
            unit=plan.wsgi.name,
            kind="WSGI",
            backend=plan.wsgi.backend,
            argv=backend.argv(),
            reload_signal=backend.reload_signal,
            # Nothing to drain: it has no WebSockets, and nginx has no readiness probe to turn away.
            drain_argv=None,
            socket_unit=None,
            environment=[f"{k}={val}" for k, val in sorted(backend.environment().items())],
            serves="HTTP",
            partner=plan.process_manager.name,
            other="WebSockets",
        )
        return context

    def _common(self, runtime: str, allow: tuple[str, ...]) -> dict[str, object]:
        plan = self.plan
        pm = plan.process_manager
        return {
            "plan": plan,
            "pm": pm,
            # RuntimeDirectory= takes a name under /run; systemd creates it
            # (owned by User:Group) at start and removes it at stop.
            "runtime_directory": runtime.removeprefix("/run/") if runtime.startswith("/run/") else None,
            "runtime_path": runtime,
            # Uploads, and the folder of an SQLite database (its journal is written beside it).
            "read_write_paths": list(dict.fromkeys(p for p in (plan.site.media_root, *plan.app.write_paths) if p)),
            "ip_address_allow": None if "any" in allow else " ".join(allow),
            # An app under /home needs to read it: hide home directories from it otherwise.
            "protect_home": "read-only"
            if any(p.startswith(("/home/", "/root/")) for p in (pm.working_directory, pm.virtualenv))
            else "yes",
        }

    def files(self) -> list[RenderedFile]:
        if self.plan.slots:
            # Two slots (issue 16): each slot's units, from the plan as that slot runs it.
            return [f for slot in self.plan.slots for f in Systemd(self.plan.for_slot(slot.name)).files()]
        files = super().files()
        if self.plan.wsgi is not None:
            content = render(self.template, self.wsgi_context())
            files.append(RenderedFile(f"{self.plan.wsgi.name}.service", content, self.mode))
        return files

    def check(self, files: list[RenderedFile], workdir: Path) -> None:
        for file in files:
            self._validate(file.name, file.content, workdir)

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd"

    def validate(self, content: str, workdir: Path) -> None:
        self._validate(self.filename, content, workdir)

    def _validate(self, name: str, content: str, workdir: Path) -> None:
        self.require_tool()
        unit = workdir / name
        unit.write_text(content, encoding="utf-8")
        verify([unit])
        score = exposure(unit)
        if score > MAX_EXPOSURE:
            raise ValidationFailed(f"systemd-analyze security rates {unit.name} {score} (more than {MAX_EXPOSURE})")


class SystemdSocket(Target):
    name = "systemd-socket"
    description = "systemd socket unit (socket activation; the service takes the socket as fd 3: use --fd 3)"
    template = "deploykit/systemd/socket"
    tool = "systemd-analyze"

    file_name = "{name}.socket"

    def context(self) -> dict[str, object]:
        server = self.plan.server
        if server.listen.kind != "fd":
            # Without FD the service binds this address itself: both would want it.
            raise SpecError(
                'DEPLOYKIT["FD"]',
                None,
                f"socket activation needs the service to take systemd's socket: without FD, {server.backend} "
                f"binds {server.address} itself; pass --fd {SYSTEMD_LISTEN_FD} to both deployconfig systemd "
                "and systemd-socket (or set FD)",
            )
        return {"plan": self.plan, "pm": self.plan.process_manager, "address": server.address}

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd" and self.plan.server.listen.kind == "fd"

    def validate(self, content: str, workdir: Path) -> None:
        self.require_tool()
        unit = workdir / self.filename
        unit.write_text(content, encoding="utf-8")
        service = workdir / f"{self.plan.process_manager.name}.service"
        if not service.exists():
            # verify wants the service the socket activates.
            service.write_text(Systemd(self.plan).render(), encoding="utf-8")
        verify([unit])
