from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploykit import processes, runner
from deploykit.exceptions import SpecError
from deploykit.management.commands.runasgi import command_line
from deploykit.plan import build_plan


class Command(BaseCommand):
    help = (
        "Run a background process, a timer's command or the release from the plan (BACKGROUND_PROCESSES, "
        "TIMERS, RELEASE_COMMANDS) with the argv the systemd units, supervisor programs and containers contain."
    )
    requires_system_checks: list[str] = []
    run_process = staticmethod(runner.run)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="the process's name ('release' for the release step)")
        parser.add_argument("--print-command", action="store_true", help="print its environment and argv and exit")
        parser.add_argument("--list", action="store_true", dest="list_names", help="list the names")

    def handle(
        self, name: str | None = None, *, print_command: bool = False, list_names: bool = False, **options: Any
    ) -> None:
        try:
            plan = build_plan()
        except SpecError as exc:
            raise CommandError(str(exc)) from exc
        known = processes.names(plan)
        if list_names:
            for known_name in known:
                self.stdout.write(known_name)
            return
        process = processes.named(plan, name) if name else None
        if process is None:
            listed = ", ".join(known) or "none: set BACKGROUND_PROCESSES, TIMERS or RELEASE_COMMANDS"
            raise CommandError(f"Name a process of the plan ({listed}).")
        argv = processes.argv(plan, process)
        environment = dict(processes.environment(plan))
        if print_command:
            self.stdout.write(command_line(argv, environment))
            return
        self.stderr.write(f"deploykit: {command_line(argv, environment)}")
        self.run_process(plan, argv, environment)
