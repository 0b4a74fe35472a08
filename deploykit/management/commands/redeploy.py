from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploykit.checks import describe, slot_failures
from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.redeploy import SETTLE, Redeploy, RedeployError, default_commands, with_overrides


class Command(BaseCommand):
    help = (
        "Redeploy with two slots (DEPLOYKIT['SLOTS']): start the idle slot, wait until it is ready, switch the "
        "proxy's upstream to it, drain the old slot and stop it."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print the steps and the commands, run nothing")
        parser.add_argument(
            "--ready-timeout", type=float, default=60.0, metavar="S", help="seconds the new slot has to be ready"
        )
        parser.add_argument(
            "--settle",
            type=float,
            default=SETTLE,
            metavar="S",
            help=f"seconds between the proxy's reload and the drain (default {SETTLE:g})",
        )
        parser.add_argument(
            "--manager-command",
            metavar="CMD",
            help="the process manager's command (default: systemctl or supervisorctl), e.g. 'supervisorctl -c FILE'",
        )
        parser.add_argument("--proxy-test", metavar="CMD", help="the proxy's test (default: nginx -t, apachectl -t...)")
        parser.add_argument(
            "--proxy-reload", metavar="CMD", help="the proxy's graceful reload (default: nginx -s reload...)"
        )

    def handle(
        self,
        *,
        dry_run: bool = False,
        ready_timeout: float = 60.0,
        settle: float = SETTLE,
        manager_command: str | None = None,
        proxy_test: str | None = None,
        proxy_reload: str | None = None,
        **options: Any,
    ) -> None:
        try:
            plan = build_plan()
        except SpecError as exc:
            raise CommandError(str(exc)) from exc
        refused = slot_failures(plan)
        if refused:
            raise CommandError("\n".join(describe(m) for m in refused))
        try:
            commands = with_overrides(
                default_commands(plan), manager=manager_command, proxy_test=proxy_test, proxy_reload=proxy_reload
            )
            procedure = Redeploy(plan, commands, ready_timeout=ready_timeout, settle=settle, say=self.stdout.write)
            if dry_run:
                for number, step in enumerate(procedure.steps(), 1):
                    self.stdout.write(f"{number}. {step}")
                return
            procedure.execute()
        except RedeployError as exc:
            raise CommandError(f"redeploy stopped: {exc}") from exc
        timings = ", ".join(f"{k} {v:.1f}" for k, v in procedure.timings.items())
        self.stdout.write(f"redeployed ({timings}; drain began at {procedure.drain_began:.3f})")
