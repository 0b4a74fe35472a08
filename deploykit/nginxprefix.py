"""nginx in a throwaway prefix: a minimal nginx.conf around site files, and the argv to test or serve it.

A generated site file expects to be included inside ``http{}`` by a packaged
nginx.conf. :class:`NginxPrefix` writes the least of one (pid, error and
access logs, temp paths, mime types) with every path nginx opens inside the
prefix, so any user can run it. ``deployconfig nginx --check``, the end-to-end
tests (tests/procs.py) and the benchmark (bench/) all use it; each adds only
its own settings (worker counts, log formats, Debian's stock directives).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploykit import quoting

#: The temporary files nginx writes (request bodies, buffered responses), one directory each.
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class NginxPrefix:
    """``root`` holds nginx.conf, the pid file, both logs and the temp directories."""

    root: Path
    binary: str = "nginx"

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    def write(
        self,
        site_files: Sequence[Path],
        *,
        access_log_format: str | None = None,
        error_log_level: str | None = None,
        worker_processes: int | str | None = None,
        worker_connections: int | None = None,
        http: Sequence[str] = (),
    ) -> Path:
        """Write nginx.conf including ``site_files`` inside http{}; return its path.

        ``access_log_format``: a log_format name (``combined``, or one ``http`` declares) to log
        requests to :attr:`access_log`; ``None`` logs none. ``http``: directives (without the
        semicolon) put before the includes. The others, when ``None``, keep nginx's defaults.
        """
        temp = self.root / "tmp"
        for kind in TEMP_PATHS:
            (temp / kind).mkdir(parents=True, exist_ok=True)
        main = []
        # Run by root, workers would drop to nobody, who cannot enter a private temp dir;
        # run by anyone else, nginx keeps that user (and would ignore the directive).
        if os.geteuid() == 0:
            main.append("user root")
        if worker_processes is not None:
            main.append(f"worker_processes {worker_processes}")
        main.append(f"pid {_path(self.root / 'nginx.pid')}")
        main.append(" ".join(["error_log", _path(self.error_log), *([error_log_level] if error_log_level else [])]))
        events = [] if worker_connections is None else [f"worker_connections {worker_connections}"]
        access = "off" if access_log_format is None else f"{_path(self.access_log)} {access_log_format}"
        body = [
            "include /etc/nginx/mime.types",
            "default_type application/octet-stream",
            *(f"{kind}_temp_path {_path(temp / kind)}" for kind in TEMP_PATHS),
            *http,
            f"access_log {access}",
            *(f"include {_path(site)}" for site in site_files),
        ]
        text = "".join(f"{line};\n" for line in main)
        text += "events {\n" + "".join(f"    {line};\n" for line in events) + "}\n"
        text += "http {\n" + "".join(f"    {line};\n" for line in body) + "}\n"
        self.conf.write_text(text, encoding="utf-8")
        return self.conf

    def argv(self, *extra: str) -> list[str]:
        """nginx on this prefix: its conf, its error log from the start (before the conf is read)."""
        return [self.binary, "-p", f"{self.root}/", "-c", str(self.conf), "-e", str(self.error_log), *extra]

    def test_argv(self) -> list[str]:
        """``nginx -t``: parse and check the conf (and the site files), quiet unless it fails."""
        return self.argv("-t", "-q")

    def serve_argv(self) -> list[str]:
        """nginx in the foreground, for a process supervisor (stopped by SIGQUIT, gracefully)."""
        return self.argv("-g", "daemon off;")


def _path(path: Path) -> str:
    return quoting.nginx(str(path))
