"""Checks on a plan that runs on a platform (PLATFORM): what its Procfile, render.yaml or fly.toml would break."""

from __future__ import annotations

from django.core import checks

from deploykit.plan import Plan


def plan_unfit_for_platform(plan: Plan) -> list[checks.CheckMessage]:
    """W025, once per problem: each one breaks the app on the platform, not on a host of ours."""
    kind = plan.platform.kind
    if kind is None:
        return []
    problems: list[tuple[str, str]] = []
    if not plan.channel_layer.crosses_processes:
        which = "the in-memory channel layer" if plan.channel_layer.kind == "memory" else "no channel layer"
        problems.append(
            (
                f"PLATFORM is {kind} with {which}: the platform runs the web process on several instances "
                "(dynos, machines) and the release and background processes apart from it, so group messages "
                "sent in one never reach consumers in another, and are silently lost.",
                "Use channels_redis in CHANNEL_LAYERS with the platform's Redis in REDIS_URL "
                "(render.yaml creates one; deployconfig channels writes the setting).",
            )
        )
    if plan.server.backend == "daphne" and plan.server.proxy_headers:
        problems.append(
            (
                f"PLATFORM is {kind} with daphne, which trusts X-Forwarded-For from every peer: on the "
                "platform's public $PORT runasgi refuses it (W001), so the web process never starts.",
                'Set DEPLOYKIT["SERVER"] to "uvicorn" (or gunicorn, granian, hypercorn), which trust the '
                "platform's networks only.",
            )
        )
    if plan.platform.host_paths:
        keys = " and ".join(plan.platform.host_paths)
        problems.append(
            (
                f"PLATFORM is {kind} with {keys} set: runasgi runs the server from "
                f"{plan.process_manager.working_directory} with {plan.process_manager.python}, paths of a host, "
                "which the platform's instances do not have, so the web process never starts.",
                f"Leave {keys} unset in the settings the platform runs: the defaults (BASE_DIR, the running "
                "Python's prefix) are right on every machine.",
            )
        )
    return [checks.Warning(message, hint=hint, id="deploykit.W025") for message, hint in problems]
