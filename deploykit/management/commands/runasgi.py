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
from deploykit.plan import Plan, build_plan
from deploykit.servers import BACKENDS, ServerBackend
from deploykit.servers.wsgi import WSGI_BACKENDS, WsgiBackend

#: Split serving's two servers (issue 15): HTTP through the WSGI one, WebSockets through the ASGI one.
ROLES = ("http", "websocket")


def command_line(argv: list[str], environment: dict[str, str]) -> str:
    """``NAME=value ... argv`` as a shell runs it: the server's whole contract, pasteable."""
    return shlex.join([*(f"{k}={val}" for k, val in sorted(environment.items())), *argv])


class Command(BaseCommand):
    help = "Run the ASGI server (daphne, uvicorn, gunicorn, granian, hypercorn) from the deployment plan."
    # Checks run in handle(), after the plan is known (like runserver).
    requires_system_checks: list[str] = []
    #: name -> backend class, and what starts the server: tests swap both.
    backends: ClassVar[dict[str, type[ServerBackend]]] = BACKENDS
    wsgi_backends: ClassVar[dict[str, type[WsgiBackend]]] = WSGI_BACKENDS
    run_server = staticmethod(runner.run)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", help="HOST:PORT or PORT to bind (overrides SOCKET and BIND)")
        add_plan_arguments(parser, server_only=True)
        parser.add_argument(
            "--role",
            choices=ROLES,
            help="with split serving (WSGI_SERVER): run the HTTP (WSGI) or the WebSocket (ASGI) server",
        )
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
        role: str | None = None,
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
        if role == "http" and plan.wsgi is None:
            raise CommandError(
                '--role http needs DEPLOYKIT["WSGI_SERVER"] (split serving): the ASGI server serves HTTP.'
            )
        # Development stays one ASGI process, HTTP included.
        http = role == "http" and not reload
        if plan.wsgi is not None and role is None and not reload and not print_command:
            raise CommandError(
                "The plan splits serving (WSGI_SERVER): two servers, each its own service. Run "
                "`manage.py runasgi --role http` (WSGI) and `manage.py runasgi --role websocket` (ASGI), as the "
                "units do; --print-command shows both, --reload runs one ASGI process for development."
            )
        # What would fail at run time (lost group messages, no layer, idle consumers
        # crashing): refused before the server starts, even with --skip-checks.
        failures = [describe(m) for m in runtime_failures(plan)]
        if failures and not print_command:
            raise CommandError("\n".join(failures))
        commands = self._commands(plan, role, reload)

        # What the settings alone do not show (a --root-path with relative static URLs).
        for warning in relative_static_url_under_sub_path(plan):
            self.stderr.write(f"deploykit: warning: {describe(warning)}")
        if print_command:
            # Printing runs nothing: say what is wrong and print it; running it is refused.
            for failure in failures:
                self.stderr.write(f"deploykit: warning: {failure}")
            for label, argv, environment in commands:
                if len(commands) > 1:
                    self.stdout.write(label)
                self.stdout.write(command_line(argv, environment))
            return
        [(_, argv, environment)] = commands
        for note in plan.notes:
            self.stderr.write(f"deploykit: {note}")
        if not skip_checks:
            self.check(display_num_errors=True)
        if http and plan.wsgi is not None:
            self._import_application("WSGI_APPLICATION", plan.wsgi.application)
        else:
            self._import_application("ASGI_APPLICATION", plan.app.asgi_application)
        try:
            runner.prepare_socket(plan, plan.wsgi if http else None)
        except (runner.SocketInUse, runner.SocketExposed) as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"deploykit: {command_line(argv, environment)}")
        self.run_server(plan, argv, environment, reload=reload and not backend_class.native_reload)

    def _commands(self, plan: Plan, role: str | None, reload: bool) -> list[tuple[str, list[str], dict[str, str]]]:
        """(label, argv, environment) of the server(s) the role names: both, labelled, for a split plan."""
        commands = []
        if plan.wsgi is not None and role != "websocket" and not reload:
            wsgi_class = self.wsgi_backends[plan.wsgi.backend]
            self._require_installed(wsgi_class.name, wsgi_class.extra, wsgi_class.is_installed())
            wsgi = wsgi_class(plan)
            label = f"# http: WSGI ({wsgi.name}), manage.py runasgi --role http"
            commands.append((label, wsgi.argv(), wsgi.environment()))
        if role != "http" or reload:
            backend_class = self.backends[plan.server.backend]
            self._require_installed(backend_class.name, backend_class.extra, backend_class.is_installed())
            backend = backend_class(plan)
            try:
                argv = backend.argv(reload=reload)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            label = f"# websocket: ASGI ({backend.name}), manage.py runasgi --role websocket"
            commands.append((label, argv, backend.environment()))
        return commands

    @staticmethod
    def _require_installed(name: str, extra: str, installed: bool) -> None:
        if not installed:
            hint = f"pip install 'deploykit[{extra}]'" if extra else "pip install daphne"
            raise CommandError(f"{name} is not installed: {hint}")

    def _import_application(self, setting: str, path: str) -> None:
        # The server imports it in its workers, where a failure only shows in a
        # log while the supervisor exits 0 or respawns forever: fail here, with
        # the reason, before anything starts.
        try:
            import_string(path)
        except Exception as exc:
            raise CommandError(f"{setting} {path!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
