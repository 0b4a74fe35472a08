from __future__ import annotations

from deploykit.plan import Plan
from deploykit.servers import get_backend
from deploykit.targets.base import Target


def server_environment(plan: Plan) -> list[tuple[str, str]]:
    """The project's environment, sorted: ENVIRONMENT and DJANGO_SETTINGS_MODULE (the env file's)."""
    environment = dict(plan.process_manager.environment)
    environment.setdefault("DJANGO_SETTINGS_MODULE", plan.app.settings_module)
    return sorted(environment.items())


def contract_environment(plan: Plan) -> list[tuple[str, str]]:
    """The server backend's variables (:mod:`deploykit.serverenv`): written wherever its argv is."""
    return sorted(get_backend(plan).environment().items())


class Env(Target):
    name = "env"
    description = "environment file for systemd's EnvironmentFile= (mode 0600: secrets go here)"
    template = "deploykit/env/env"
    file_name = "env"
    # Secrets (DJANGO_SECRET_KEY, database passwords) are added to this file.
    mode = 0o600

    def context(self) -> dict[str, object]:
        return {"plan": self.plan, "environment": server_environment(self.plan)}

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd"
