from __future__ import annotations

import shlex
from typing import Any

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploykit import release
from deploykit.exceptions import SpecError
from deploykit.plan import build_plan


class Command(BaseCommand):
    help = (
        "Run the release (RELEASE_COMMANDS: migrate, collectstatic) under the database's lock: two releases "
        "started together run one after the other, and the second finds nothing left to do."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--step",
            action="append",
            metavar="COMMAND",
            help="a management command with its arguments, e.g. 'migrate --noinput' (repeatable; default: the plan's)",
        )

    def handle(self, *, step: list[str] | None = None, **options: Any) -> None:
        if step is None:
            try:
                steps = [list(s) for s in build_plan().processes.release]
            except SpecError as exc:
                raise CommandError(str(exc)) from exc
        else:
            steps = [shlex.split(s) for s in step]
        known = get_commands()
        for words in steps:
            if not words or words[0] not in known:
                raise CommandError(f"--step {shlex.join(words)!r}: no such management command")
        verbosity = options.get("verbosity", 1)

        def call(*words: str) -> None:
            call_command(*words, verbosity=verbosity, stdout=self.stdout, stderr=self.stderr)

        try:
            release.run(steps, call, lambda line: self.stderr.write(f"deploykit: {line}"))
        except release.NoLock as exc:
            raise CommandError(str(exc)) from exc
