from __future__ import annotations

from deploykit.plan import Bind
from deploykit.servers.base import ServerBackend


class Uvicorn(ServerBackend):
    name = "uvicorn"
    module = "uvicorn"
    extra = "uvicorn"
    loggers = ("uvicorn.error", "uvicorn.access")
    log_config_option = "--log-config {path}"
    # uvicorn's multiprocess supervisor restarts its workers one by one on HUP.
    reload_signal = "HUP"
    # --root-path is prepended to the forwarded path (uvicorn 0.54 h11_impl/httptools_impl):
    # behind a proxy that forwards /sub/x, the app would see /sub/sub/x. The wrapper sets it.
    handles_root_path = False

    def bind_args(self, bind: Bind) -> list[str]:
        if bind.kind == "unix":
            return ["--uds", bind.path]
        if bind.kind == "fd":
            return ["--fd", str(bind.fd)]
        return ["--host", bind.host, "--port", str(bind.port)]

    def argv(self, *, reload: bool = False) -> list[str]:
        s = self.server
        argv = [*self.prefix(), self.target, *self.bind_args(s.listen), "--backlog", str(s.backlog)]
        if reload:
            argv += ["--reload", "--reload-dir", self.plan.app.base_dir]
        else:
            argv += ["--workers", str(s.workers)]
            if s.max_requests is not None:
                # Its supervisor (--workers 2 or more: the plan refuses one) starts a new worker in the old
                # one's place; tests/e2e/test_recycling.py.
                argv += ["--limit-max-requests", str(s.max_requests)]
                argv += ["--limit-max-requests-jitter", str(s.max_requests_jitter)]
        if s.proxy_headers:
            argv += ["--proxy-headers", "--forwarded-allow-ips", ",".join(s.forwarded_allow_ips)]
        else:
            argv += ["--no-proxy-headers"]
        argv += [
            # auto, not on: an application without a lifespan handler (a
            # Channels ProtocolTypeRouter as the docs write it) must start.
            "--lifespan",
            "auto",
            "--timeout-graceful-shutdown",
            str(s.graceful_timeout),
            "--timeout-keep-alive",
            str(s.keepalive_timeout),
            "--ws-ping-interval",
            str(s.websocket_ping_interval),
            "--ws-ping-timeout",
            str(s.websocket_ping_timeout),
            "--ws-max-size",
            str(s.websocket_max_size),
            "--ws-per-message-deflate",
            "true" if s.websocket_compression else "false",
            "--log-level",
            s.log_level,
        ]
        if not s.access_log:
            argv.append("--no-access-log")
        return argv
