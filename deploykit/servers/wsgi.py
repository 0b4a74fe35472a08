"""The WSGI side of a split plan (issue 15): granian and gunicorn, argv and environment from ``plan.wsgi``.

The same contract as the ASGI backends: the argv plus the environment is all
the server gets, every target writes both, ``runasgi --role http`` execs both.
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar

from deploykit import serverenv
from deploykit.plan import Bind, Plan, WsgiServer
from deploykit.servers.base import drain_command
from deploykit.servers.granian import bind_args as granian_bind_args

#: The wrapper that applies X-Forwarded-* and the root path (deploykit.wsgiproxy).
WSGI_PROXY_APPLICATION = "deploykit.wsgiproxy:application"


class WsgiBackend:
    name: ClassVar[str]
    module: ClassVar[str]
    extra: ClassVar[str]
    #: Both reload their workers one by one on HUP.
    reload_signal: ClassVar[str | None] = "HUP"

    def __init__(self, plan: Plan) -> None:
        if plan.wsgi is None:
            raise ValueError("the plan does not split serving (DEPLOYKIT['WSGI_SERVER'] is unset)")
        self.plan = plan
        self.server: WsgiServer = plan.wsgi

    @classmethod
    def is_installed(cls) -> bool:
        return importlib.util.find_spec(cls.module) is not None

    def prefix(self) -> list[str]:
        return [self.plan.process_manager.python, "-m", self.module]

    @property
    def wrapped(self) -> bool:
        # Neither server sets REMOTE_ADDR from X-Forwarded-For, nor strips the root path from PATH_INFO.
        return self.server.proxy_headers or bool(self.server.root_path) or self._metrics_directory is not None

    @property
    def _metrics_directory(self) -> str | None:
        return None if self.plan.metrics is None else self.plan.metrics.wsgi_directory

    @property
    def target(self) -> str:
        return WSGI_PROXY_APPLICATION if self.wrapped else self.server.target

    def argv(self) -> list[str]:
        raise NotImplementedError

    def drain_argv(self, *, at_least: int = 0) -> list[str] | None:
        """Its drain: readiness 503 for ``at_least`` seconds (it has no WebSockets); None without a drain file."""
        if self.server.drain_file is None or not self.wrapped:
            return None
        return drain_command(self.plan.process_manager.python, at_least=at_least)

    def environment(self) -> dict[str, str]:
        s = self.server
        if not self.wrapped:
            return {}
        env = {
            serverenv.APP: s.application,
            serverenv.TRUSTED_PROXIES: ",".join(s.forwarded_allow_ips) if s.proxy_headers else "",
        }
        if s.root_path:
            env[serverenv.ROOT_PATH] = s.root_path
        if self.plan.app.health_path is not None:
            env[serverenv.HEALTH_PATH] = self.plan.app.health_path
        if s.drain_file is not None:
            # Only its readiness drains (503): it has no WebSockets.
            env[serverenv.DRAIN_FILE] = s.drain_file
        if self._metrics_directory is not None:
            # Counted here, summed by the ASGI server, which answers METRICS_PATH.
            env[serverenv.METRICS_DIR] = self._metrics_directory
        return env


class GranianWsgi(WsgiBackend):
    name = "granian"
    module = "granian"
    extra = "granian"

    def bind_args(self, bind: Bind) -> list[str]:
        return granian_bind_args(bind)

    def argv(self) -> list[str]:
        s = self.server
        return [
            *self.prefix(),
            "--interface",
            "wsgi",
            *self.bind_args(s.listen),
            *("--workers", str(s.workers), "--blocking-threads", str(s.threads), "--backlog", str(s.backlog)),
            *("--workers-kill-timeout", str(s.graceful_timeout), "--respawn-failed-workers"),
            *("--log-level", s.log_level, "--access-log" if s.access_log else "--no-access-log"),
            self.target,
        ]


class GunicornWsgi(WsgiBackend):
    name = "gunicorn"
    module = "gunicorn"
    extra = "gunicorn"

    def argv(self) -> list[str]:
        s = self.server
        argv = [
            *self.prefix(),
            self.target,
            # gthread: a thread pool per worker, and keep-alive connections that do not hold a worker.
            *("--worker-class", "gthread", "--bind", str(s.listen)),
            *("--workers", str(s.workers), "--threads", str(s.threads), "--backlog", str(s.backlog)),
            *("--graceful-timeout", str(s.graceful_timeout), "--keep-alive", str(s.keepalive_timeout)),
            *("--log-level", s.log_level),
            # gunicorn decides wsgi.url_scheme from X-Forwarded-Proto itself, for these peers: the
            # same list the wrapper applies, so both agree (it never sets REMOTE_ADDR: the wrapper does).
            *("--forwarded-allow-ips", ",".join(s.forwarded_allow_ips) if s.proxy_headers else ""),
        ]
        if s.max_requests is not None:
            # granian counts no requests (it recycles by time or memory): W017 says so.
            argv += ["--max-requests", str(s.max_requests), "--max-requests-jitter", str(s.max_requests_jitter)]
        if s.access_log:
            argv += ["--access-logfile", "-"]
        return argv


WSGI_BACKENDS: dict[str, type[WsgiBackend]] = {cls.name: cls for cls in (GranianWsgi, GunicornWsgi)}


def get_wsgi_backend(plan: Plan) -> WsgiBackend:
    """The backend for the plan's WSGI server (the plan must split serving)."""
    if plan.wsgi is None:
        raise ValueError("the plan does not split serving (DEPLOYKIT['WSGI_SERVER'] is unset)")
    return WSGI_BACKENDS[plan.wsgi.backend](plan)
