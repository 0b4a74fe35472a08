"""``deployconfig all``: every file that fits the plan, and INSTALL.md to put them in place.

A function over the targets, not a target: nothing else special-cases it.
"""

from __future__ import annotations

from deploykit.plan import Plan
from deploykit.rendering import render
from deploykit.servers import get_backend
from deploykit.targets.apache import MODULES
from deploykit.targets.base import RenderedFile, Target
from deploykit.targets.env import contract_environment

NAME = "all"
DESCRIPTION = "a folder with every file that fits the plan, and INSTALL.md (the commands, in order)"
INSTALL_TEMPLATE = "deploykit/install/INSTALL.md"
INSTALL_FILENAME = "INSTALL.md"


def parts(plan: Plan) -> list[Target]:
    """The targets that fit the plan's server, proxy and process manager."""
    from deploykit.targets import TARGETS

    return [t for t in (cls(plan) for cls in TARGETS.values() if cls.bundled) if t.applies()]


def install_guide(plan: Plan, targets: list[Target]) -> RenderedFile:
    pm = plan.process_manager
    socket_dir = plan.server.address.path.rpartition("/")[0] if plan.server.address.kind == "unix" else None
    context = {
        "plan": plan,
        "pm": pm,
        "files": {t.name: [f.name for f in t.files()] for t in targets},
        "argv": get_backend(plan).argv(),
        "environment": contract_environment(plan),
        "apache_modules": MODULES,
        "socket_dir": socket_dir,
        "env_dir": pm.env_file.rpartition("/")[0] or "/",
        "static_roots": [p for p in (plan.site.static_root, plan.site.media_root) if p],
    }
    return RenderedFile(INSTALL_FILENAME, render(INSTALL_TEMPLATE, context))


def files(plan: Plan) -> list[RenderedFile]:
    """INSTALL.md first, then every part's files."""
    targets = parts(plan)
    return [install_guide(plan, targets), *(f for t in targets for f in t.files())]
