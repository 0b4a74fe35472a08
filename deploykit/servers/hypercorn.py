from __future__ import annotations

from deploykit import serverenv
from deploykit.plan import Bind
from deploykit.servers.base import ServerBackend

#: What hypercorn's command line cannot carry (the WebSocket message limit), from the plan.
CONFIG = "python:deploykit.servers.hypercorn_config"


class Hypercorn(ServerBackend):
    name = "hypercorn"
    module = "hypercorn"
    extra = "hypercorn"
    loggers = ("hypercorn.error", "hypercorn.access")
    log_config_option = "--log-config json:{path}"
    reload_signal = "HUP"
    handles_proxy_headers = False

    def bind_args(self, bind: Bind) -> list[str]:
        # hypercorn takes gunicorn's --bind syntax (unix:PATH, fd://N, [HOST]:PORT): Bind's own string form.
        args = ["--bind", str(bind)]
        if bind.kind == "unix":
            # hypercorn creates the socket under the caller's umask (0755 from a shell's 022): the
            # proxy's group could not connect. --umask 7 (0o007) gives srwxrwx---, like UMask=0007.
            args += ["--umask", "7"]
        return args

    def argv(self, *, reload: bool = False) -> list[str]:
        s = self.server
        argv = [*self.prefix(), "--config", CONFIG, *self.bind_args(s.listen)]
        argv += ["--workers", "1" if reload else str(s.workers), "--backlog", str(s.backlog)]
        if s.root_path:
            argv += ["--root-path", s.root_path]
        argv += [
            "--graceful-timeout",
            str(s.graceful_timeout),
            "--keep-alive",
            str(s.keepalive_timeout),
            "--websocket-ping-interval",
            str(s.websocket_ping_interval),
            "--log-level",
            s.log_level.upper(),
        ]
        if s.max_requests is not None and not reload:
            # Not --max-requests-jitter: hypercorn 0.18 sets the jitter to --max-requests's value from it
            # (hypercorn/__main__.py); the config module sets the jitter from the environment instead.
            argv += ["--max-requests", str(s.max_requests)]
        if s.access_log:
            argv += ["--access-logfile", "-"]
        if reload:
            argv.append("--reload")
        argv.append(self.target)
        return argv

    def environment(self) -> dict[str, str]:
        # The message limit, for --config's module (hypercorn has no flag for it), and the recycling jitter.
        env = {**super().environment(), serverenv.WS_MAX_SIZE: str(self.server.websocket_max_size)}
        if self.server.max_requests is not None:
            env[serverenv.MAX_REQUESTS_JITTER] = str(self.server.max_requests_jitter)
        return env
