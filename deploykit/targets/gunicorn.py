from __future__ import annotations

from pathlib import Path

from deploykit.servers import get_backend
from deploykit.servers.gunicorn import WORKER_CLASS
from deploykit.targets.base import Target, ToolMissing, ValidationFailed
from deploykit.targets.pyfile import check_python, literal


class Gunicorn(Target):
    name = "gunicorn"
    description = "gunicorn.conf.py with the uvicorn worker (the same settings as the server's argv)"
    template = "deploykit/gunicorn/gunicorn.conf.py-tpl"
    file_name = "gunicorn.conf.py"

    def context(self) -> dict[str, object]:
        plan = self.plan
        backend = get_backend(plan)
        return {
            "plan": plan,
            "server": plan.server,
            # Python literals for the .py file.
            "wsgi_app": literal(backend.target),
            "worker_class": literal(WORKER_CLASS),
            "bind": literal(backend.bind_args(plan.server.listen)[1]),
            "forwarded_allow_ips": literal(
                ",".join(plan.server.forwarded_allow_ips) if plan.server.proxy_headers else ""
            ),
            "loglevel": literal(plan.server.log_level),
            # gunicorn sets these in its workers: deploykit's uvicorn worker reads them.
            "raw_env": [literal(f"{k}={val}") for k, val in sorted(backend.environment().items())],
        }

    def applies(self) -> bool:
        return self.plan.server.backend == "gunicorn"

    def require_tool(self) -> str:
        return "gunicorn.config"

    def validate(self, content: str, workdir: Path) -> None:
        """Compile, then set every name through gunicorn's own Config (its type checks)."""
        check_python(content, self.filename)
        try:
            from gunicorn.config import Config  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ToolMissing("gunicorn is not installed; cannot check gunicorn.conf.py") from exc
        namespace: dict[str, object] = {"__file__": str(workdir / self.filename)}
        exec(compile(content, self.filename, "exec"), namespace)  # our own rendered file
        config = Config()
        for key, value in namespace.items():
            if key in config.settings:
                try:
                    config.set(key, value)
                except (TypeError, ValueError) as exc:
                    raise ValidationFailed(f"{self.filename}: {key} = {value!r}: {exc}") from exc
            elif not key.startswith("__"):
                raise ValidationFailed(f"{self.filename}: {key} is not a gunicorn setting")
