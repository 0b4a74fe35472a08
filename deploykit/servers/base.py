from __future__ import annotations

import importlib.util
from typing import ClassVar

from deploykit import serverenv
from deploykit.plan import Bind, Plan

#: The wrapper that applies X-Forwarded-* for servers that cannot (deploykit.proxy).
PROXY_APPLICATION = "deploykit.proxy:application"
#: The wrapper that drains WebSockets (deploykit.drain); it applies the proxy wrapper inside itself.
DRAIN_APPLICATION = "deploykit.drain:application"


def drain_command(python: str, *, at_least: int = 0) -> list[str]:
    """``python -m deploykit.drain start --wait``: run in the server's environment, which names its drain file."""
    argv = [python, "-m", "deploykit.drain", "start", "--wait"]
    return [*argv, "--at-least", str(at_least)] if at_least else argv


class ServerBackend:
    """Builds one ASGI server's argv and environment from the plan.

    The argv and the environment are the whole contract with the server
    process: ``runasgi`` executes them, and the systemd, supervisor and
    container targets write them, so they cannot disagree. Nothing inside the
    server rebuilds the plan.
    """

    name: ClassVar[str]
    #: Module whose presence means the server is installed, and the pip extra.
    module: ClassVar[str]
    extra: ClassVar[str]
    #: The signal that makes the server reload its workers gracefully, if any.
    reload_signal: ClassVar[str | None] = None
    #: Whether the server applies X-Forwarded-* itself, from a trust list.
    handles_proxy_headers: ClassVar[bool] = True
    #: Whether it believes them from every peer whatever the list says (daphne: W001, runasgi refuses a public bind).
    trusts_every_peer: ClassVar[bool] = False
    #: Whether the server sets the ASGI root_path without rewriting the path the proxy forwards
    #: (uvicorn prepends its --root-path to the path: /sub/x arrives as /sub/sub/x).
    handles_root_path: ClassVar[bool] = True
    #: Whether ``--reload`` is native (else runasgi wraps Django's autoreloader).
    native_reload: ClassVar[bool] = True
    #: The server's own loggers, as named in its source: (general/error, access).
    loggers: ClassVar[tuple[str, str]]
    #: The option that loads a logging config file (``{path}``); ``None``: the server has
    #: none, Django's LOGGING applies.
    log_config_option: ClassVar[str | None] = None

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.server = plan.server

    @classmethod
    def is_installed(cls) -> bool:
        return importlib.util.find_spec(cls.module) is not None

    def prefix(self) -> list[str]:
        return [self.plan.process_manager.python, "-m", self.module]

    @property
    def wraps_proxy_headers(self) -> bool:
        """Whether deploykit's middleware applies X-Forwarded-* (the server cannot trust them itself)."""
        return self.server.proxy_headers and not self.handles_proxy_headers

    @property
    def drops_untrusted_headers(self) -> bool:
        """Whether deploykit's middleware drops the X-Forwarded-* the server left in an untrusted peer's request.

        uvicorn and gunicorn's uvicorn worker ignore them for the scope's client and scheme but pass the headers
        on, and Django's SECURE_PROXY_SSL_HEADER (USE_X_FORWARDED_HOST, _PORT) reads them from whoever sent them.
        Under ``*`` (a unix socket) every peer is trusted: nothing to drop, no wrapper.
        """
        s = self.server
        return (
            s.proxy_headers
            and self.handles_proxy_headers
            and not self.trusts_every_peer
            and "*" not in s.forwarded_allow_ips
        )

    @property
    def wraps_root_path(self) -> bool:
        """Whether deploykit's middleware sets the root path (the server's own option would rewrite the path)."""
        return bool(self.server.root_path) and not self.handles_root_path

    @property
    def wrapped(self) -> bool:
        """Whether the argv loads deploykit's wrapper instead of the application (it also counts metrics)."""
        return (
            self.wraps_proxy_headers
            or self.drops_untrusted_headers
            or self.wraps_root_path
            or self.plan.metrics is not None
        )

    @property
    def target(self) -> str:
        if self.server.drain_file is not None:
            return DRAIN_APPLICATION
        if self.wrapped:
            return PROXY_APPLICATION
        # The application may be the project's own router (the Channels tutorial's asgi.py), which knows
        # nothing of HEALTH_PATH: the drain's wrapper, without a drain, answers it in front.
        return DRAIN_APPLICATION if self.plan.app.health_path is not None else self.plan.app.asgi_target

    def argv(self, *, reload: bool = False) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Variables the server process needs besides the project's own (see :mod:`deploykit.serverenv`)."""
        env: dict[str, str] = {}
        if self.wrapped:
            env[serverenv.APP] = self.plan.app.asgi_application
            # Empty: the server applies X-Forwarded-* itself; the wrapper must not again.
            env[serverenv.TRUSTED_PROXIES] = (
                ",".join(self.server.forwarded_allow_ips) if self.wraps_proxy_headers else ""
            )
            if self.server.proxy_headers and self.handles_proxy_headers:
                # Whose headers the server applied: they stay, the rest go (a sub-path or METRICS_PATH serves
                # the wrapper under "*" and for daphne too, where nothing may go).
                trusted = ("*",) if self.trusts_every_peer else self.server.forwarded_allow_ips
                env[serverenv.FORWARDED_ALLOW_IPS] = ",".join(trusted)
        if self.wraps_root_path:
            env[serverenv.ROOT_PATH] = self.server.root_path
        if self.plan.app.health_path is not None:
            # Whatever the application is: the server's wrapper answers it (deploykit.health.wrap).
            env[serverenv.APP] = self.plan.app.asgi_application
            env[serverenv.HEALTH_PATH] = self.plan.app.health_path
        if self.server.drain_file is not None:
            env[serverenv.APP] = self.plan.app.asgi_application
            env[serverenv.DRAIN_FILE] = self.server.drain_file
            env[serverenv.DRAIN_TIMEOUT] = str(self.server.drain_timeout)
        metrics = self.plan.metrics
        if metrics is not None:
            env[serverenv.METRICS_PATH] = metrics.path
            env[serverenv.METRICS_DIR] = metrics.directory
            if metrics.wsgi_directory is not None:
                env[serverenv.METRICS_READ] = metrics.wsgi_directory
            if metrics.granian_port is not None:
                env[serverenv.GRANIAN_METRICS_PORT] = str(metrics.granian_port)
        return env

    def drain_argv(self, *, at_least: int = 0, explicit: bool = False) -> list[str] | None:
        """The command that drains this server and waits for the drain (None: DRAIN_TIMEOUT is 0).

        ``explicit``: with the file and the window on the command line, for a shell that lacks the server's
        environment (an operator's, before ``supervisorctl restart``).
        """
        if self.server.drain_file is None:
            return None
        argv = drain_command(self.plan.process_manager.python, at_least=at_least)
        if explicit:
            argv += ["--file", self.server.drain_file, "--timeout", str(self.server.drain_timeout)]
        return argv

    def bind_args(self, bind: Bind) -> list[str]:
        raise NotImplementedError
