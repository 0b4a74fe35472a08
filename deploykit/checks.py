"""System checks for deployment mistakes Django's ``check --deploy`` misses.

Ids are stable and never reused; README lists them. Each check is a pure
function of the plan (plus the few settings the plan does not hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core import checks

from deploykit.exceptions import SpecError
from deploykit.plan import Plan, build_plan

TAG = "deploykit"


def _plan() -> tuple[Plan | None, list[checks.CheckMessage]]:
    try:
        return build_plan(), []
    except SpecError as exc:
        return None, [
            checks.Error(
                f"Invalid deployment setting: {exc}",
                hint=f"Fix {exc.setting}; every value that reaches a config file is validated.",
                id="deploykit.E001",
            )
        ]


def check_plan(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001: the deployment settings resolve into a valid plan."""
    return _plan()[1]


def check_deploy(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    plan, errors = _plan()
    if plan is None:
        return []  # E001 already reported by check_plan
    for check in DEPLOY_CHECKS:
        errors.extend(check(plan))
    return errors


def in_memory_layer_across_processes(plan: Plan) -> list[checks.CheckMessage]:
    processes = plan.server.total_processes * max(1, len(plan.site.upstream))
    if plan.channel_layer.kind == "memory" and processes > 1:
        return [
            checks.Error(
                f"The in-memory channel layer is used with {processes} server processes: group "
                "messages will not cross processes and are silently lost.",
                hint='Use channels_redis (DEPLOYKIT["REDIS_URL"] or CHANNEL_LAYERS) or run one process.',
                id="deploykit.E002",
            )
        ]
    return []


DEPLOY_CHECKS = [in_memory_layer_across_processes]


def register() -> None:
    checks.register(check_plan, TAG)
    checks.register(check_deploy, TAG, deploy=True)
