"""Config targets: name -> class. ``deployconfig --list`` shows them in this order."""

from __future__ import annotations

from deploykit.plan import Plan
from deploykit.targets.apache import Apache
from deploykit.targets.asgi import Asgi, AsgiExplicit
from deploykit.targets.base import RenderedFile, Target, ToolMissing, ValidationFailed
from deploykit.targets.caddy import Caddy
from deploykit.targets.channels import Channels
from deploykit.targets.compose import Compose
from deploykit.targets.docker import Dockerfile
from deploykit.targets.env import Env
from deploykit.targets.fly import Fly
from deploykit.targets.gunicorn import Gunicorn
from deploykit.targets.kubernetes import Kubernetes
from deploykit.targets.logconfig import Logging
from deploykit.targets.nginx import Nginx
from deploykit.targets.paas import Procfile
from deploykit.targets.processes import SupervisorProcesses, SystemdProcesses
from deploykit.targets.render import Render
from deploykit.targets.supervisor import Supervisor
from deploykit.targets.systemd import Systemd, SystemdSocket

TARGETS: dict[str, type[Target]] = {
    cls.name: cls
    for cls in (
        Asgi,
        AsgiExplicit,
        Channels,
        Nginx,
        Apache,
        Caddy,
        Systemd,
        SystemdSocket,
        SystemdProcesses,
        Env,
        Supervisor,
        SupervisorProcesses,
        Gunicorn,
        Logging,
        Dockerfile,
        Compose,
        Kubernetes,
        Procfile,
        Render,
        Fly,
    )
}


def get_target(name: str, plan: Plan) -> Target:
    return TARGETS[name](plan)


from deploykit.targets import bundle  # noqa: E402  (it imports TARGETS lazily)

__all__ = ["TARGETS", "RenderedFile", "Target", "ToolMissing", "ValidationFailed", "bundle", "get_target"]
