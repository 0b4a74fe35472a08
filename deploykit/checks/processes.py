"""Checks on what runs besides the web servers (issue 17): the release's lock, Celery's worker."""

from __future__ import annotations

from django.core import checks

from deploykit.plan import Plan
from deploykit.release import LOCKED_VENDORS


def release_without_lock(plan: Plan) -> list[checks.CheckMessage]:
    p = plan.processes
    if not p.release or p.database_vendor in LOCKED_VENDORS:
        return []
    return [
        checks.Error(
            f"The release ({', '.join(' '.join(s) for s in p.release)}) runs on a {p.database_vendor} database, "
            "which deploykit cannot lock: runrelease refuses to run, and two releases started together (two "
            "pods, two hosts) would migrate at once.",
            hint="Set DEPLOYKIT['RELEASE_COMMANDS'] = [] and run migrate from one place before the new code starts.",
            id="deploykit.E008",
        )
    ]


def celery_without_worker(plan: Plan) -> list[checks.CheckMessage]:
    p = plan.processes
    if not p.celery_broker or any(b.kind == "celery-worker" for b in p.background):
        return []
    return [
        checks.Warning(
            "CELERY_BROKER_URL is set but DEPLOYKIT['BACKGROUND_PROCESSES'] has no celery-worker: the views "
            "enqueue tasks that no deployed process runs.",
            hint="Add {'celeryworker': {'kind': 'celery-worker', 'app': 'config.celery_app'}} to BACKGROUND_PROCESSES.",
            id="deploykit.W021",
        )
    ]


def worker_stop_below_task_limit(plan: Plan) -> list[checks.CheckMessage]:
    limit = plan.processes.celery_task_time_limit
    if limit is None:
        return []
    return [
        checks.Warning(
            f"The Celery worker {b.name!r} gets {b.stop_timeout}s to finish its tasks when it is stopped (a deploy, "
            f"a restart), but CELERY_TASK_TIME_LIMIT lets a task run {limit}s: longer tasks are killed mid-way.",
            hint=f"Set BACKGROUND_PROCESSES[{b.name!r}]['stop_timeout'] to {limit} or more.",
            id="deploykit.W022",
        )
        for b in plan.processes.background
        if b.kind == "celery-worker" and b.stop_timeout < limit
    ]
