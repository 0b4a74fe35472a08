from __future__ import annotations

import difflib
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploykit.exceptions import SpecError
from deploykit.options import add_plan_arguments, plan_overrides
from deploykit.plan import build_plan
from deploykit.targets import TARGETS, RenderedFile, Target, ToolMissing, ValidationFailed
from deploykit.targets.all import All
from deploykit.targets.asgi import AsgiExplicit
from deploykit.writing import WriteError, write_atomic


class Command(BaseCommand):
    help = "Write a deployment config (nginx, systemd, supervisor, ...) from the deployment plan."
    # The plan is validated here, with the flags; a broken project still gets --help and --list.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", nargs="?", choices=list(TARGETS), metavar="TARGET", help="see --list")
        parser.add_argument(
            "-o", "--output", metavar="PATH", help="write to PATH (a folder for 'all') instead of stdout"
        )
        parser.add_argument("--force", action="store_true", help="overwrite existing files")
        parser.add_argument("--dry-run", action="store_true", help="say what would be written, write nothing")
        parser.add_argument(
            "--diff", action="store_true", help="diff against the file at -o PATH; exit 1 if it differs"
        )
        parser.add_argument("--check", action="store_true", help="run the real validator (nginx -t, ...) first")
        parser.add_argument("--list", action="store_true", dest="list_targets", help="list the targets")
        parser.add_argument("--explicit", action="store_true", help="asgi: the expanded form from the Channels docs")
        add_plan_arguments(parser)

    def handle(
        self,
        target: str | None = None,
        *,
        output: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        diff: bool = False,
        check: bool = False,
        list_targets: bool = False,
        explicit: bool = False,
        **options: Any,
    ) -> None:
        if list_targets:
            width = max(len(name) for name in TARGETS)
            for name, cls in TARGETS.items():
                self.stdout.write(f"{name:<{width}}  {cls.description}")
            return
        if target is None:
            raise CommandError("Name a target (deployconfig --list shows them).")
        if explicit and target != "asgi":
            raise CommandError("--explicit applies to the asgi target only.")
        if (diff or dry_run) and output is None:
            raise CommandError(f"--{'diff' if diff else 'dry-run'} needs -o PATH.")
        overrides, labels = plan_overrides(options)
        try:
            plan = build_plan(overrides, labels)
        except SpecError as exc:
            raise CommandError(str(exc)) from exc
        for note in plan.notes:
            self.stderr.write(f"deploykit: {note}")
        chosen: Target = AsgiExplicit(plan) if explicit else TARGETS[target](plan)
        try:
            files = chosen.files()
        except (SpecError, ValueError) as exc:  # a target that needs what the plan lacks (HEALTH_PATH)
            raise CommandError(str(exc)) from exc
        folder = isinstance(chosen, All) or len(files) > 1

        if check:
            self._check(chosen, files[0])
        if output is None:
            if isinstance(chosen, All):
                raise CommandError("all writes a folder: give -o DIR.")
            for rendered in files:
                if folder:
                    self.stdout.write(f"# ==> {rendered.name} <==")
                self.stdout.write(rendered.content, ending="")
            return
        path = Path(output)
        destinations = [(path / f.name if folder else path, f) for f in files]
        if diff:
            self._diff(destinations)
            return
        if folder and not dry_run:
            if path.exists() and not path.is_dir():
                raise CommandError(f"{path} is not a folder.")
            path.mkdir(parents=True, exist_ok=True)
        for destination, rendered in destinations:
            if dry_run:
                self.stdout.write(f"Would write {destination}")
                continue
            try:
                write_atomic(destination, rendered.content, force=force, mode=rendered.mode)
            except WriteError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Wrote {destination}")

    def _check(self, target: Target, rendered: RenderedFile) -> None:
        with tempfile.TemporaryDirectory(prefix="deploykit-check-") as workdir:
            try:
                target.validate(rendered.content, Path(workdir))
            except ToolMissing as exc:
                self.stderr.write(f"Not checked: {exc}")
                return
            except ValidationFailed as exc:
                raise CommandError(f"{target.name} check failed:\n{exc}") from exc
        for skipped in getattr(target, "skipped", []):
            self.stderr.write(f"Not checked: {skipped}")
        self.stderr.write(f"Checked {target.name}: OK")

    def _diff(self, destinations: list[tuple[Path, RenderedFile]]) -> None:
        """Unified diff of each file on disk against what would be written; exit 1 when any differs."""
        differs = False
        for destination, rendered in destinations:
            try:
                current = destination.read_text(encoding="utf-8")
                old_name = str(destination)
            except FileNotFoundError:
                current, old_name = "", "/dev/null"
            if current == rendered.content:
                self.stderr.write(f"No changes: {destination}")
                continue
            differs = True
            lines = difflib.unified_diff(
                current.splitlines(keepends=True),
                rendered.content.splitlines(keepends=True),
                fromfile=old_name,
                tofile=f"{destination} (deployconfig)",
            )
            for line in lines:
                self.stdout.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n", ending="")
        if differs:
            # 1 like diff(1): CI drift checks fail on it.
            sys.exit(1)
