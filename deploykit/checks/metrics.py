"""Checks on METRICS_PATH (issue 17 item 7): the endpoint answers before Django and would hide what it covers."""

from __future__ import annotations

from django.core import checks
from django.urls import resolve

from deploykit.plan import Plan


def metrics_path_collides(plan: Plan) -> list[checks.CheckMessage]:
    if plan.metrics is None:
        return []
    path = plan.metrics.path
    hidden = None
    if path == plan.app.health_path:
        hidden = "the readiness endpoint (HEALTH_PATH): probes would read metrics and never a status"
    elif plan.app.root_urlconf is not None:
        try:
            match = resolve(path, urlconf=plan.app.root_urlconf)
        except Exception:  # noqa: BLE001 (Resolver404: no page there; Django's own URL checks report the rest)
            match = None
        if match is not None:
            view = getattr(match.func, "view_class", match.func)
            hidden = f"the page {view.__module__}.{view.__qualname__} (ROOT_URLCONF): nobody could reach it"
    if hidden is None:
        return []
    return [
        checks.Warning(
            f"DEPLOYKIT['METRICS_PATH'] {path!r} is answered before Django and so hides {hidden}.",
            hint="Give the metrics a path of their own, e.g. '/-/metrics'.",
            id="deploykit.W026",
        )
    ]
