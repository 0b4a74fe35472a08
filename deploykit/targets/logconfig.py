"""The ``logging`` target: Django's LOGGING, and the same config as a file for the server's --log-config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Re-exported: users paste deploykit.targets.logconfig.JsonFormatter into their LOGGING.
from deploykit.logformat import JsonFormatter
from deploykit.plan import Plan
from deploykit.servers import BACKENDS
from deploykit.targets.base import RenderedFile, Target, ValidationFailed
from deploykit.targets.pyfile import check_python, literal


def logging_config(plan: Plan) -> dict[str, Any]:
    """A dictConfig for Django and the plan's server: one handler to stderr (journald, supervisor's log)."""
    server = plan.server
    level = server.log_level.upper()
    formatter = "json" if server.log_format == "json" else "text"
    general, access = BACKENDS[server.backend].loggers
    loggers: dict[str, Any] = {
        "django": {"level": level, "handlers": ["console"], "propagate": False},
        general: {"level": level, "handlers": ["console"], "propagate": False},
        access: {"level": "INFO" if server.access_log else "WARNING", "handlers": ["console"], "propagate": False},
    }
    formatters: dict[str, Any] = {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    }
    if formatter == "json":
        formatters = {"json": {"()": f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"}}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "stream": "ext://sys.stderr"},
        },
        "root": {"level": level, "handlers": ["console"]},
        "loggers": loggers,
    }


class Logging(Target):
    name = "logging"
    description = "LOGGING for settings.py (Django + the server's loggers) and log-config.json for --log-config"
    template = "deploykit/logging/logging.py-tpl"
    file_name = "logging.py"
    json_filename = "log-config.json"

    def context(self) -> dict[str, object]:
        option = BACKENDS[self.plan.server.backend].log_config_option
        return {
            "plan": self.plan,
            "logging": literal(logging_config(self.plan)),
            "log_config_option": None if option is None else option.format(path=self.json_filename),
        }

    def files(self) -> list[RenderedFile]:
        as_json = json.dumps(logging_config(self.plan), indent=2) + "\n"
        return [RenderedFile(self.filename, self.render()), RenderedFile(self.json_filename, as_json)]

    def validate(self, content: str, workdir: Path) -> None:
        """Compile, then load the config with logging.config's own validation (without applying it)."""
        check_python(content, self.filename)
        namespace: dict[str, Any] = {}
        exec(compile(content, self.filename, "exec"), namespace)  # our own rendered file
        import logging.config

        configurator = logging.config.DictConfigurator(namespace["LOGGING"])
        # configure() would replace this process's handlers: resolve the parts
        # that can fail (formatter and handler classes) instead.
        try:
            for spec in namespace["LOGGING"]["formatters"].values():
                if "()" in spec:
                    configurator.resolve(spec["()"])
            for spec in namespace["LOGGING"]["handlers"].values():
                configurator.resolve(spec["class"])
        except (ImportError, ValueError) as exc:
            raise ValidationFailed(f"{self.filename}: {exc}") from exc


__all__ = ["JsonFormatter", "Logging", "logging_config"]
