from __future__ import annotations

from deploykit.plan import Bind
from deploykit.servers.base import ServerBackend


def bind_args(bind: Bind) -> list[str]:
    """granian's listening options, the same for its ASGI and WSGI interfaces."""
    if bind.kind == "unix":
        # 0o660: the proxy reaches the socket through the group.
        return ["--uds", bind.path, "--uds-permissions", "432"]
    if bind.kind == "fd":
        raise ValueError("granian cannot take an inherited socket")
    return ["--host", bind.host, "--port", str(bind.port)]


class Granian(ServerBackend):
    name = "granian"
    module = "granian"
    extra = "granian"
    loggers = ("_granian", "granian.access")
    log_config_option = "--log-config {path}"
    reload_signal = "HUP"
    handles_proxy_headers = False

    def bind_args(self, bind: Bind) -> list[str]:
        return bind_args(bind)

    def argv(self, *, reload: bool = False) -> list[str]:
        s = self.server
        argv = [*self.prefix(), "--interface", "asgi", *self.bind_args(s.listen)]
        argv += ["--workers", "1" if reload else str(s.workers), "--backlog", str(s.backlog)]
        if s.root_path:
            argv += ["--url-path-prefix", s.root_path]
        argv += [
            "--workers-kill-timeout",
            str(s.graceful_timeout),
            "--respawn-failed-workers",
            "--log-level",
            s.log_level,
            "--access-log" if s.access_log else "--no-access-log",
        ]
        if reload:
            argv += ["--reload", "--reload-paths", self.plan.app.base_dir]
        if self.plan.metrics is not None and self.plan.metrics.granian_port is not None:
            # granian's own exporter (granian 2.5+), on loopback only: METRICS_PATH passes it through.
            argv += [
                "--metrics",
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                str(self.plan.metrics.granian_port),
            ]
        argv.append(self.target)
        return argv
