"""Checks on a plan that runs on a platform (PLATFORM): what its Procfile, render.yaml or fly.toml would break."""

from __future__ import annotations

from django.core import checks

from deploykit.plan import Plan


def plan_unfit_for_platform(plan: Plan) -> list[checks.CheckMessage]:
    kind = plan.platform.kind
    if kind is None:
        return []
    found: list[checks.CheckMessage] = []
    if not plan.channel_layer.crosses_processes:
        which = "the in-memory channel layer" if plan.channel_layer.kind == "memory" else "no channel layer"
        found.append(
            checks.Warning(
                f"PLATFORM is {kind} with {which}: the platform runs the web process on several instances "
                "(dynos, machines) and the release and background processes apart from it, so group messages "
                "sent in one never reach consumers in another, and are silently lost.",
                hint="Use channels_redis in CHANNEL_LAYERS with the platform's Redis in REDIS_URL "
                "(render.yaml creates one; deployconfig channels writes the setting).",
                id="deploykit.W025",
            )
        )
    if plan.server.backend == "daphne" and plan.server.proxy_headers:
        found.append(
            checks.Warning(
                f"PLATFORM is {kind} with daphne, which trusts X-Forwarded-For from every peer: on the "
                "platform's public $PORT runasgi refuses it (W001), so the web process never starts.",
                hint='Set DEPLOYKIT["SERVER"] to "uvicorn" (or gunicorn, granian, hypercorn), which trust the '
                "platform's networks only.",
                id="deploykit.W025",
            )
        )
    return found
