from __future__ import annotations

from deploykit import serverenv
from deploykit.plan import Bind
from deploykit.servers.base import ServerBackend

#: uvicorn's worker, carrying the plan's WebSocket settings that gunicorn's argv cannot.
WORKER_CLASS = "deploykit.servers.gunicorn_worker.UvicornWorker"


class Gunicorn(ServerBackend):
    name = "gunicorn"
    module = "gunicorn"
    extra = "gunicorn"
    loggers = ("gunicorn.error", "gunicorn.access")
    log_config_option = "--log-config-json {path}"
    reload_signal = "HUP"
    # Its uvicorn worker would prepend a root path like uvicorn does: the wrapper sets it.
    handles_root_path = False

    def bind_args(self, bind: Bind) -> list[str]:
        if bind.kind == "fd" and self.plan.process_manager.kind == "systemd":
            # gunicorn takes systemd's sockets from LISTEN_FDS itself (fd 3 on; its systemd.py) and binds no
            # address then: --bind fd://3 besides would make a second listener on fd 3, which the first one
            # has closed (EBADF, gunicorn never starts; tests/e2e/test_socket_activation.py). So the argv
            # names the socket unit's own address, which gunicorn does not bind while systemd passes it.
            return ["--bind", str(self.server.address)]
        # gunicorn's --bind syntax (unix:PATH, fd://N, [HOST]:PORT) is Bind's own string form.
        return ["--bind", str(bind)]

    def argv(self, *, reload: bool = False) -> list[str]:
        s = self.server
        argv = [
            *self.prefix(),
            self.target,
            "--worker-class",
            WORKER_CLASS,
            *self.bind_args(s.listen),
            "--workers",
            "1" if reload else str(s.workers),
            "--backlog",
            str(s.backlog),
            "--graceful-timeout",
            str(s.graceful_timeout),
            "--keep-alive",
            str(s.keepalive_timeout),
            "--log-level",
            s.log_level,
        ]
        if s.max_requests is not None and not reload:
            argv += ["--max-requests", str(s.max_requests), "--max-requests-jitter", str(s.max_requests_jitter)]
        # gunicorn passes forwarded_allow_ips on to uvicorn's proxy middleware.
        argv += ["--forwarded-allow-ips", ",".join(s.forwarded_allow_ips) if s.proxy_headers else ""]
        if s.access_log:
            argv += ["--access-logfile", "-"]
        if reload:
            argv.append("--reload")
        return argv

    def environment(self) -> dict[str, str]:
        # What gunicorn's argv cannot carry, for deploykit's uvicorn worker.
        s = self.server
        env = {
            **super().environment(),
            serverenv.WS_MAX_SIZE: str(s.websocket_max_size),
            serverenv.WS_PING_INTERVAL: str(s.websocket_ping_interval),
            serverenv.WS_PING_TIMEOUT: str(s.websocket_ping_timeout),
            serverenv.WS_PER_MESSAGE_DEFLATE: "1" if s.websocket_compression else "0",
        }
        return env
