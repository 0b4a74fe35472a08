from __future__ import annotations

import difflib
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploykit.checks import command_warnings, describe
from deploykit.exceptions import SpecError
from deploykit.options import add_plan_arguments, plan_overrides
from deploykit.plan import build_plan
from deploykit.targets import TARGETS, RenderedFile, Target, ToolMissing, ValidationFailed, bundle
from deploykit.writing import WriteError, check_destination, write_atomic


class Command(BaseCommand):
    help = "Write a deployment config (nginx, systemd, supervisor, ...) from the deployment plan."
    # The plan is validated here, with the flags; a broken project still gets --help and --list.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", nargs="?", choices=[*TARGETS, bundle.NAME], metavar="TARGET", help="see --list")
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
        parser.add_argument("--explicit", action="store_true", help="asgi: same as the asgi-explicit target")
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
            rows = [(name, cls.description) for name, cls in TARGETS.items()] + [(bundle.NAME, bundle.DESCRIPTION)]
            width = max(len(name) for name, _ in rows)
            for name, description in rows:
                self.stdout.write(f"{name:<{width}}  {description}")
            return
        if target is None:
            raise CommandError("Name a target (deployconfig --list shows them).")
        if explicit:
            if target != "asgi":
                raise CommandError("--explicit applies to the asgi target only.")
            target = "asgi-explicit"
        if (diff or dry_run) and output is None:
            raise CommandError(f"--{'diff' if diff else 'dry-run'} needs -o PATH.")
        overrides, labels = plan_overrides(options)
        try:
            plan = build_plan(overrides, labels)
            for note in plan.notes:
                self.stderr.write(f"deploykit: {note}")
            # What runasgi would refuse, or the site would break on: the files are written all the same.
            for warning in command_warnings(plan):
                self.stderr.write(f"deploykit: warning: {describe(warning)}")
            # A target that needs what the plan lacks (HEALTH_PATH) raises here, before anything is written.
            if target == bundle.NAME:
                targets, files = bundle.parts(plan), bundle.files(plan)
                for problem in bundle.requirements_problems(plan):
                    self.stderr.write(f"deploykit: warning: {problem}")
            else:
                targets = [TARGETS[target](plan)]
                files = targets[0].files()
        except (SpecError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        folder = target == bundle.NAME or len(files) > 1

        if check:
            self._check(target, targets)
        if output is None:
            if target == bundle.NAME:
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
        if dry_run:
            # The same refusals the real run would meet (an existing file without --force, a link).
            try:
                for destination, _ in destinations:
                    if not (folder and not path.exists()):
                        check_destination(destination, force=force)
            except WriteError as exc:
                raise CommandError(str(exc)) from exc
            for destination, _ in destinations:
                self.stdout.write(f"Would write {destination}")
            return
        self._write(path if folder else None, destinations, force=force)

    def _write(self, folder: Path | None, destinations: list[tuple[Path, RenderedFile]], *, force: bool) -> None:
        """Every destination is checked before the first is written: all of them, or none."""
        if folder is not None:
            if folder.exists() and not folder.is_dir():
                raise CommandError(f"{folder} is not a folder.")
            folder.mkdir(parents=True, exist_ok=True)
        try:
            for destination, _ in destinations:
                check_destination(destination, force=force)
            for destination, rendered in destinations:
                write_atomic(destination, rendered.content, force=force, mode=rendered.mode)
                self.stdout.write(f"Wrote {destination}")
        except WriteError as exc:
            raise CommandError(str(exc)) from exc

    def _check(self, name: str, targets: list[Target]) -> None:
        """Every file of every target with its own validator, each target in its own folder."""
        with tempfile.TemporaryDirectory(prefix="deploykit-check-") as workdir:
            for target in targets:
                where = Path(workdir) / target.name
                where.mkdir()
                try:
                    target.check(target.files(), where)
                except ToolMissing as exc:
                    if target.tool is not None or len(targets) == 1:
                        self.stderr.write(f"Not checked: {exc}")
                except ValidationFailed as exc:
                    prefix = f"{target.filename}: " if len(targets) > 1 else ""
                    raise CommandError(f"{name} check failed:\n{prefix}{exc}") from exc
        self.stderr.write(f"Checked {name}: OK")

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
