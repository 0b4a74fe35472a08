"""render.yaml: a Render Blueprint with the web service, a Key Value (Redis) instance and the workers.

The web service runs the Procfile's web command (runasgi on ``$PORT``, Render's proxy trusted);
REDIS_URL comes from the Key Value instance (fromService), as the settings read it (the compose
target's convention); migrate runs as the preDeployCommand, once per deploy.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from deploykit.plan import Plan
from deploykit.targets.base import Target, ValidationFailed
from deploykit.targets.docker import health_path
from deploykit.targets.paas import (
    MANAGE,
    background_commands,
    release_command,
    shell_command,
    timer_commands,
    web_command,
)

#: Variables the blueprint sets itself, or the platform does: not asked for at creation.
PROVIDED = frozenset({"REDIS_URL", "DJANGO_SETTINGS_MODULE", "PORT", "WEB_CONCURRENCY"})

#: https://render.com/docs/blueprint-spec: what a service of each type must have (its JSON schema is
#: served from render.com and SchemaStore.org only; no package on PyPI, npm or Debian carries it).
REQUIRED = {
    "web": ("name", "runtime", "buildCommand", "startCommand"),
    "worker": ("name", "runtime", "buildCommand", "startCommand"),
    "cron": ("name", "runtime", "schedule", "buildCommand", "startCommand"),
    "keyvalue": ("name", "ipAllowList"),
}


def key_value_name(plan: Plan) -> str:
    return f"{plan.app.name}-redis"


class Render(Target):
    name = "render"
    description = "render.yaml Blueprint: web service (runasgi on $PORT), Key Value (Redis) as REDIS_URL, workers"
    template = "deploykit/render/render.yaml"
    file_name = "render.yaml"
    platforms = frozenset({"render"})

    def context(self) -> dict[str, object]:
        plan = self.plan
        build = [shell_command(("pip", "install", *(w for f in plan.container.requirements for w in ("-r", f))))]
        if plan.site.static_root is not None:
            build.append(shell_command((*MANAGE, "collectstatic", "--noinput")))
        environment = [("DJANGO_SETTINGS_MODULE", plan.app.settings_module), *plan.process_manager.environment]
        return {
            "plan": plan,
            "build_command": " && ".join(build),
            "start_command": web_command(plan),
            "pre_deploy_command": release_command(plan),
            "health_path": health_path(plan),
            "workers": [
                (f"{plan.app.name}-{name}", command, replicas) for name, command, replicas in background_commands(plan)
            ],
            "crons": [(f"{plan.app.name}-{name}", cron, command) for name, cron, command in timer_commands(plan)],
            "key_value": key_value_name(plan),
            "environment": environment,
            "asked": [n for n in plan.app.environment_names if n not in PROVIDED],
        }

    def applies(self) -> bool:
        return self.plan.platform.kind in self.platforms

    def validate(self, content: str, workdir: Path) -> None:
        try:
            data = yaml.safe_load(content)
        except yaml.YAMLError as exc:
            raise ValidationFailed(f"render.yaml is not YAML: {exc}") from exc
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, list) or not services:
            raise ValidationFailed("render.yaml: no services list")
        for service in services:
            kind = service.get("type")
            missing = [k for k in REQUIRED.get(kind, ("type",)) if k not in service]
            if kind not in REQUIRED or missing:
                raise ValidationFailed(f"render.yaml: service {service.get('name')!r} ({kind}) lacks {missing}")
