from __future__ import annotations

import shlex
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from deploykit import runner
from deploykit.checks import describe, runtime_failures
from deploykit.checks.site import relative_static_url_under_sub_path
from deploykit.exceptions import SpecError
from deploykit.options import add_plan_arguments, plan_overrides
from deploykit.plan import build_plan
from deploykit.servers import BACKENDS, ServerBackend


def command_line(argv: list[str], environment: dict[str, str]) -> str:
    """``NAME=value ... argv`` as a shell runs it: the server's whole contract, pasteable."""
    return shlex.join([*(f"{k}={val}" for k, val in sorted(environment.items())), *argv])


class Command(BaseCommand):
    help = "Run the ASGI server (daphne, uvicorn, gunicorn, granian, hypercorn) from the deployment plan."
    # Checks run in handle(), after the plan is known (like runserver).
    requires_system_checks: list[str] = []
    #: name -> backend class, and what starts the server: tests swap both.
    backends: ClassVar[dict[str, type[ServerBackend]]] = BACKENDS
    run_server = staticmethod(runner.run)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", help="HOST:PORT or PORT to bind (overrides SOCKET and BIND)")
        add_plan_arguments(parser, server_only=True)
        parser.add_argument("--reload", action="store_true", help="restart on code changes (development)")
        parser.add_argument("--print-command", action="store_true", help="print the server's argv and exit")
        parser.add_argument(
            "--skip-checks",
            action="store_true",
            help="do not run the system checks (what would fail at run time is refused all the same)",
        )

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
        # What would fail at run time (lost group messages, no layer, idle consumers
        # crashing): refused before the server starts, even with --skip-checks.
        failures = [describe(m) for m in runtime_failures(plan)]
        if failures and not print_command:
            raise CommandError("\n".join(failures))
        if not backend_class.is_installed():
            extra = f"pip install 'deploykit[{backend_class.extra}]'" if backend_class.extra else "pip install daphne"
            raise CommandError(f"{server.backend} is not installed: {extra}")
        backend = backend_class(plan)
        try:
            argv = backend.argv(reload=reload)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        environment = backend.environment()

        # What the settings alone do not show (a --root-path with relative static URLs).
        for warning in relative_static_url_under_sub_path(plan):
            self.stderr.write(f"deploykit: warning: {describe(warning)}")
        if print_command:
            # Printing runs nothing: say what is wrong and print it; running it is refused.
            for failure in failures:
                self.stderr.write(f"deploykit: warning: {failure}")
            self.stdout.write(command_line(argv, environment))
            return
        for note in plan.notes:
            self.stderr.write(f"deploykit: {note}")
        if not skip_checks:
            self.check(display_num_errors=True)
        self._import_application(plan.app.asgi_application)
        try:
            runner.prepare_socket(plan)
        except (runner.SocketInUse, runner.SocketExposed) as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"deploykit: {command_line(argv, environment)}")
        self.run_server(plan, argv, environment, reload=reload and not backend_class.native_reload)

    def _import_application(self, path: str) -> None:
        # The server imports it in its workers, where a failure only shows in a
        # log while the supervisor exits 0 or respawns forever: fail here, with
        # the reason, before anything starts.
        try:
            import_string(path)
        except Exception as exc:
            raise CommandError(f"ASGI_APPLICATION {path!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
