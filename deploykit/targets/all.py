from __future__ import annotations

from pathlib import Path

from deploykit.servers import get_backend
from deploykit.targets.apache import MODULES
from deploykit.targets.base import RenderedFile, Target, ToolMissing, ValidationFailed
from deploykit.targets.env import contract_environment


class All(Target):
    """Every file that fits the plan's server, proxy and process manager, and INSTALL.md to put them in place."""

    name = "all"
    description = "a folder with every file that fits the plan, and INSTALL.md (the commands, in order)"
    template = "deploykit/install/INSTALL.md"
    filename = "INSTALL.md"

    def parts(self) -> list[Target]:
        from deploykit.targets import TARGETS

        return [t for t in (cls(self.plan) for name, cls in TARGETS.items() if name != self.name) if t.applies()]

    def context(self) -> dict[str, object]:
        plan = self.plan
        parts = {t.name: t for t in self.parts()}
        files = {t.name: [f.name for f in t.files()] for t in parts.values()}
        pm = plan.process_manager
        socket_dir = None
        if plan.server.address.kind == "unix":
            socket_dir = plan.server.address.path.rpartition("/")[0]
        return {
            "plan": plan,
            "pm": pm,
            "files": files,
            "argv": get_backend(plan).argv(),
            "environment": contract_environment(plan),
            "apache_modules": MODULES,
            "socket_dir": socket_dir,
            "env_dir": pm.env_file.rpartition("/")[0] or "/",
            "static_roots": [p for p in (plan.site.static_root, plan.site.media_root) if p],
        }

    def files(self) -> list[RenderedFile]:
        out = [RenderedFile(self.filename, self.render())]
        for target in self.parts():
            out += target.files()
        return out

    def validate(self, content: str, workdir: Path) -> None:
        """Check every part with its own validator, each in its own directory.

        Parts whose tool is not installed are listed in ``self.skipped``.
        """
        self.skipped: list[str] = []
        for target in self.parts():
            rendered = target.files()[0]  # the file the target's validator reads
            where = workdir / target.name
            where.mkdir()
            try:
                target.validate(rendered.content, where)
            except ToolMissing as exc:
                if target.tool is not None:
                    self.skipped.append(str(exc))
            except ValidationFailed as exc:
                raise ValidationFailed(f"{rendered.name}: {exc}") from exc
