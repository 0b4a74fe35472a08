"""``deployconfig all``: every file that fits the plan, and INSTALL.md to put them in place.

A function over the targets, not a target: nothing else special-cases it.
"""

from __future__ import annotations

from deploykit.plan import Plan
from deploykit.plan.model import INHERITED_SOCKET_SERVERS
from deploykit.rendering import render
from deploykit.servers import get_backend
from deploykit.targets.apache import modules as apache_modules
from deploykit.targets.base import RenderedFile, Target
from deploykit.targets.env import contract_environment

NAME = "all"
DESCRIPTION = "a folder with every file that fits the plan, and INSTALL.md (the commands, in order)"
INSTALL_TEMPLATE = "deploykit/install/INSTALL.md"
INSTALL_FILENAME = "INSTALL.md"
BOOTSTRAP_TEMPLATE = "deploykit/nginx/bootstrap.conf"
BOOTSTRAP_FILENAME = "nginx-bootstrap.conf"


def parts(plan: Plan) -> list[Target]:
    """The targets that fit the plan's server, proxy and process manager, or its platform's (PLATFORM)."""
    from deploykit.targets import TARGETS

    kind = plan.platform.kind
    # On a platform its router is the proxy and it runs the processes: no nginx, unit or program of ours.
    fits = [cls for cls in TARGETS.values() if cls.bundled and (kind is None or kind in cls.platforms)]
    return [t for t in (cls(plan) for cls in fits) if t.applies()]


#: The pip distribution each server comes in (daphne is a dependency of deploykit itself).
SERVER_DISTRIBUTIONS = {"uvicorn": "uvicorn", "gunicorn": "gunicorn", "granian": "granian", "hypercorn": "hypercorn"}


def requirements_problems(plan: Plan) -> list[str]:
    """What the project's requirements.txt lacks for this plan (a real one pinned Django 2.0 and had neither)."""
    names = plan.app.requirements
    if names is None:
        return ["the project has no requirements.txt: INSTALL.md installs from it; list deploykit and the server"]
    servers = [SERVER_DISTRIBUTIONS.get(plan.server.backend)]
    if plan.wsgi is not None:
        servers.append(SERVER_DISTRIBUTIONS[plan.wsgi.backend])
    servers_needed = [s for s in dict.fromkeys(servers) if s is not None]
    missing = [name for name in ["deploykit", *servers_needed] if name not in names]
    if not missing:
        return []
    extra = f"deploykit[{','.join(servers_needed)}]" if servers_needed else "deploykit"
    return [
        f"the project's requirements.txt does not list {' or '.join(missing)}: add '{extra}' to it, "
        "or the server cannot start"
    ]


def bootstrap_site(plan: Plan) -> RenderedFile | None:
    """An HTTP-only nginx site that serves the ACME webroot, for certbot's first certificate.

    The TLS site names certificate files that do not exist before certbot runs,
    so ``nginx -t`` fails on it: install this one first.
    """
    tls = plan.site.tls
    if plan.site.proxy != "nginx" or tls is None or tls.acme_webroot is None or tls.certificate is None:
        return None
    return RenderedFile(BOOTSTRAP_FILENAME, render(BOOTSTRAP_TEMPLATE, {"plan": plan, "site": plan.site}))


PLATFORM_TEMPLATE = "deploykit/install/platform.md"
PLATFORM_TITLES = {"heroku": "Heroku", "render": "Render", "fly": "Fly.io"}


def platform_guide(plan: Plan, targets: list[Target]) -> RenderedFile:
    """INSTALL.md for a platform: its processes and its deploy commands, nothing of a host's."""
    from deploykit.targets.fly import fly_commands
    from deploykit.targets.paas import background_commands, release_command, timer_commands, web_command
    from deploykit.targets.render import PROVIDED

    if plan.platform.kind == "fly":
        # Fly runs the image: its CMD on the container port, its python.
        release, web, background = fly_commands(plan)
    else:
        release, web, background = release_command(plan), web_command(plan), background_commands(plan)
    context = {
        "plan": plan,
        "title": PLATFORM_TITLES[plan.platform.kind or ""],
        "files": {t.name: [f.name for f in t.files()] for t in targets},
        "release": release,
        "web": web,
        "background": background,
        "timers": timer_commands(plan),
        "asked": [n for n in plan.app.environment_names if n not in PROVIDED],
        "requirements_problems": requirements_problems(plan),
    }
    return RenderedFile(INSTALL_FILENAME, render(PLATFORM_TEMPLATE, context))


def install_guide(plan: Plan, targets: list[Target]) -> RenderedFile:
    if plan.platform.kind is not None:
        return platform_guide(plan, targets)
    pm = plan.process_manager
    names = {t.name: [f.name for f in t.files()] for t in targets}
    socket_dir = plan.server.address.path.rpartition("/")[0] if plan.server.address.kind == "unix" else None
    # Two slots: the commands shown are the first slot's (the unslotted plan is what nothing runs).
    shown = plan.for_slot(plan.slots[0].name) if plan.slots else plan
    context = {
        "plan": plan,
        "pm": pm,
        "files": names,
        # Issue 17: the release unit, background units and timers (or supervisor programs) to install.
        "process_files": names.get("systemd-processes", []) + names.get("supervisor-processes", []),
        "argv": get_backend(shown).argv(),
        "environment": contract_environment(shown),
        "apache_modules": apache_modules(plan),
        "socket_dir": socket_dir,
        "inherited_socket_servers": ", ".join(INHERITED_SOCKET_SERVERS),
        "env_dir": pm.env_file.rpartition("/")[0] or "/",
        "static_roots": [p for p in (plan.site.static_root, plan.site.media_root) if p],
        "bootstrap": bootstrap_site(plan),
        # The settings' own CHANNEL_LAYERS runs; paste deploykit's only where there is none to keep.
        "paste_channels": plan.channel_layer.kind == "none"
        or (plan.channel_layer.kind == "memory" and plan.channel_layer.redis_url is not None),
        "requirements_problems": requirements_problems(plan),
        **_split_context(shown),
        **_processes_context(plan),
        **_slots_context(plan),
    }
    return RenderedFile(INSTALL_FILENAME, render(INSTALL_TEMPLATE, context))


def _split_context(plan: Plan) -> dict[str, object]:
    """The WSGI server's command and socket folder, for a plan that splits serving (issue 15)."""
    if plan.wsgi is None:
        return {}
    from deploykit.servers.wsgi import get_wsgi_backend

    backend = get_wsgi_backend(plan)
    address = plan.wsgi.address
    return {
        "wsgi": plan.wsgi,
        "wsgi_argv": backend.argv(),
        "wsgi_environment": sorted(backend.environment().items()),
        "wsgi_socket_dir": address.path.rpartition("/")[0] if address.kind == "unix" else None,
    }


def _processes_context(plan: Plan) -> dict[str, object]:
    """Issue 17: the release (its argv: supervisor runs it by hand), background units, timers, beat's state."""
    from deploykit import processes

    p = plan.processes
    return {
        "release_unit": p.release_unit if p.release else None,
        "release_argv": processes.argv(plan, p.release_process) if p.release else None,
        "release_environment": processes.environment(plan),
        "release_steps": ", ".join(" ".join(step) for step in p.release),
        "process_units": [b.unit for b in p.background],
        "timer_units": [t.unit for t in p.timers],
        "timer_commands": [(t.cron, processes.argv(plan, t)) for t in p.timers],
        "state_directories": [b.state_directory for b in p.background if b.state_directory],
    }


def _slots_context(plan: Plan) -> dict[str, object]:
    """Two slots (issue 16): each slot's services and socket folders, and the upstream file to install."""
    if not plan.slots:
        return {}
    folders = [
        b.path.rpartition("/")[0]
        for slot in plan.slots
        for b in (*slot.server.addresses, *(slot.wsgi.addresses if slot.wsgi else ()))
        if b.kind == "unix"
    ]
    first = plan.slots[0]
    units = [f"{service}.service" for slot in plan.slots for service in slot.services]
    return {
        "slots": plan.slots,
        "first_slot": first,
        "slot_units": units,
        "first_units": [f"{service}.service" for service in first.services],
        "slot_socket_dirs": list(dict.fromkeys(folders)),
        "upstream_name": (plan.upstream_file or "").rpartition("/")[2],
    }


def files(plan: Plan) -> list[RenderedFile]:
    """INSTALL.md first, then every part's files."""
    targets = parts(plan)
    bootstrap = bootstrap_site(plan)
    extra = [bootstrap] if bootstrap is not None else []
    return [install_guide(plan, targets), *(f for t in targets for f in t.files()), *extra]
