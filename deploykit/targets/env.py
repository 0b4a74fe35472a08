from __future__ import annotations

from deploykit.targets.base import Target


class Env(Target):
    name = "env"
    description = "environment file for systemd's EnvironmentFile= (mode 0600: secrets go here)"
    template = "deploykit/env/env"
    filename = "env"
    # Secrets (DJANGO_SECRET_KEY, database passwords) are added to this file.
    mode = 0o600

    def context(self) -> dict[str, object]:
        pm = self.plan.process_manager
        environment = dict(pm.environment)
        environment.setdefault("DJANGO_SETTINGS_MODULE", self.plan.app.settings_module)
        return {"plan": self.plan, "environment": sorted(environment.items())}

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd"
