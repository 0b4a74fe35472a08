from __future__ import annotations

from deploykit.plan import Bind
from deploykit.servers.base import ServerBackend

_VERBOSITY = {"critical": "0", "error": "0", "warning": "0", "info": "1", "debug": "2"}


class Daphne(ServerBackend):
    name = "daphne"
    module = "daphne"
    extra = ""  # a dependency of deploykit itself
    loggers = ("daphne", "daphne.access")
    native_reload = False
    # --proxy-headers applies the leftmost X-Forwarded-For of any peer: dropping the headers would hide nothing.
    trusts_every_peer = True

    def bind_args(self, bind: Bind) -> list[str]:
        if bind.kind == "unix":
            return ["-u", bind.path]
        if bind.kind == "fd":
            return ["--fd", str(bind.fd)]
        return ["-b", bind.host, "-p", str(bind.port)]

    def argv(self, *, reload: bool = False) -> list[str]:
        s = self.server
        argv = [*self.prefix(), *self.bind_args(s.listen)]
        if s.proxy_headers:
            # daphne trusts the leftmost X-Forwarded-For from any peer: the
            # proxy must overwrite the header (the nginx target does).
            argv.append("--proxy-headers")
        if s.root_path:
            argv += ["--root-path", s.root_path]
        argv += [
            "--ping-interval",
            str(s.websocket_ping_interval),
            "--ping-timeout",
            str(s.websocket_ping_timeout),
            "--websocket_timeout",
            str(s.websocket_lifetime),
            "--websocket-max-message-size",
            str(s.websocket_max_size),
            "--application-close-timeout",
            str(s.graceful_timeout),
            "-v",
            _VERBOSITY[s.log_level],
        ]
        if not s.access_log:
            argv += ["--access-log", "/dev/null"]
        argv.append(self.target)
        return argv
