"""The argv of every process besides the web servers: one function, for every target and ``runprocess``.

A background process, the release and a timer's command are the virtualenv's python with the plan's
arguments (``python -m celery ...``, ``python -m django COMMAND ...``): the systemd ``ExecStart=``, the
supervisor ``command=``, the Compose ``command:``, the Kubernetes ``command`` and ``runprocess`` all
call :func:`argv`, so none of them can run something the others do not.
"""

from __future__ import annotations

from deploykit.plan import Plan
from deploykit.plan.processmodel import RELEASE, Background, Timer


def argv(plan: Plan, process: Background | Timer | None) -> list[str]:
    """The process's argv with the plan's virtualenv (the image's, for ``plan.in_container()``)."""
    if process is None:
        raise ValueError("the plan has no release step (RELEASE_COMMANDS is empty)")
    return [plan.process_manager.python, *process.args]


def environment(plan: Plan) -> list[tuple[str, str]]:
    """What a process needs besides the env file: the settings module (the project's own ENVIRONMENT too)."""
    env = dict(plan.process_manager.environment)
    env.setdefault("DJANGO_SETTINGS_MODULE", plan.app.settings_module)
    return sorted(env.items())


def named(plan: Plan, name: str) -> Background | Timer | None:
    """The background process, timer or (``release``) release step called ``name``; None if there is none."""
    if name == RELEASE:
        return plan.processes.release_process
    every: list[Background | Timer] = [*plan.processes.background, *plan.processes.timers]
    return next((process for process in every if process.name == name), None)


def names(plan: Plan) -> list[str]:
    """Every name ``runprocess`` knows, in the plan's order."""
    found = [b.name for b in plan.processes.background] + [t.name for t in plan.processes.timers]
    return found + ([RELEASE] if plan.processes.release else [])
