from __future__ import annotations

import shlex
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploykit import runner
from deploykit.exceptions import SpecError
from deploykit.options import add_plan_arguments, plan_overrides
from deploykit.plan import build_plan
from deploykit.servers import BACKENDS, ServerBackend


class Command(BaseCommand):
    help = "Run the ASGI server (daphne, uvicorn, gunicorn, granian, hypercorn) from the deployment plan."
    # Checks run in handle(), after the plan is known (like runserver).
    requires_system_checks: list[str] = []
    #: name -> backend class; tests swap in a recording fake.
    backends: dict[str, type[ServerBackend]] = BACKENDS

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", help="HOST:PORT or PORT to bind (overrides SOCKET and BIND)")
        add_plan_arguments(parser)
        parser.add_argument("--reload", action="store_true", help="restart on code changes (development)")
        parser.add_argument("--print-command", action="store_true", help="print the server's argv and exit")
        parser.add_argument("--skip-checks", action="store_true", help="do not run the system checks")

    def handle(
        self,
        addrport: str | None = None,
        *,
        reload: bool = False,
        print_command: bool = False,
        skip_checks: bool = False,
        **options: Any,
    ) -> None:
        overrides, labels = plan_overrides(options)
        if addrport is not None:
            overrides["BIND"], labels["BIND"] = addrport, "addrport"
            overrides.pop("SOCKET", None)
        try:
            plan = build_plan(overrides, labels)
        except SpecError as exc:
            raise CommandError(str(exc)) from exc

        server = plan.server
        backend_class = self.backends[server.backend]
        if reload and server.total_processes > 1:
            raise CommandError(f"--reload runs one process; the plan has {server.total_processes} (use --workers 1).")
        lost_messages = None
        if not plan.channel_layer.crosses_processes and server.total_processes > 1:
            lost_messages = (
                f"The channel layer ({plan.channel_layer.kind}) does not cross processes, and the plan "
                f"runs {server.total_processes}: group messages would be lost. Configure Redis "
                '(DEPLOYKIT["REDIS_URL"]) or use --workers 1.'
            )
            # Printing the argv runs nothing: say what is wrong and print it; running it is refused.
            if not print_command:
                raise CommandError(lost_messages)
        if not backend_class.is_installed():
            extra = f"pip install 'deploykit[{backend_class.extra}]'" if backend_class.extra else "pip install daphne"
            raise CommandError(f"{server.backend} is not installed: {extra}")
        backend = backend_class(plan)
        try:
            argv = backend.argv(reload=reload)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        if print_command:
            if lost_messages:
                self.stderr.write(f"deploykit: warning: {lost_messages}")
            self.stdout.write(shlex.join(argv))
            return
        for note in plan.notes:
            self.stderr.write(f"deploykit: {note}")
        if not skip_checks:
            self.check(display_num_errors=True)
        try:
            runner.prepare_socket(plan)
        except runner.SocketInUse as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"deploykit: {shlex.join(argv)}")
        backend.run(argv, reload=reload)
