"""System checks for deployment mistakes Django's ``check --deploy`` misses.

Ids are stable and never reused; README lists them. Each check is a pure
function of the plan, built once per check run (``check_deploy``); one module
per section: :mod:`.layer`, :mod:`.site`, :mod:`.server`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core import checks
from django.utils.module_loading import import_string

from deploykit.checks.layer import (
    group_expiry_below_lifetime,
    in_memory_layer_across_processes,
    layer_disagrees,
    layer_missing,
    redis_capacity_default,
    redis_pool_left_at_bounded_default,
    redis_read_timeout_below_blocking_pop,
)
from deploykit.checks.metrics import metrics_path_collides
from deploykit.checks.platform import plan_unfit_for_platform
from deploykit.checks.processes import celery_without_worker, release_without_lock, worker_stop_below_task_limit
from deploykit.checks.server import (
    drain_longer_than_stop_timeout,
    graceful_timeout_not_below_stop_timeout,
    max_requests_not_supported,
    proxy_headers_trusted_from_anywhere,
    recycled_workers_drop_websockets,
    socket_outside_runtime_directory,
    sync_only_middleware,
)
from deploykit.checks.site import (
    allowed_hosts_wildcard_with_websockets,
    csrf_trusted_origins_missing,
    proxy_read_timeout_not_above_ping,
    relative_static_url_under_sub_path,
    ssl_header_believed_from_any_peer,
    ssl_header_not_set_by_proxy,
    trusted_proxies_too_broad,
    trusted_proxies_while_server_ignores_them,
)
from deploykit.checks.slots import slots_collide, slots_split_the_rooms
from deploykit.checks.tls import hsts_preload_below_minimum
from deploykit.checks.wsgi import async_views_under_wsgi, wsgi_application_unusable, wsgi_server_not_installed
from deploykit.exceptions import SpecError
from deploykit.plan import Plan, app_routing, build_plan
from deploykit.plan.reader import Reader

Check = Callable[[Plan], list[checks.CheckMessage]]

TAG = "deploykit"


def _invalid(exc: SpecError) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"Invalid deployment setting: {exc}",
            hint=f"Fix {exc.setting}; every value that reaches a config file is validated.",
            id="deploykit.E001",
        )
    ]


def check_app_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 on plain ``check``: only the keys the running application reads.

    A typo in a deploy-only key (a container image, a port) must not block
    ``migrate`` or ``runserver``; ``check --deploy`` validates the whole plan.
    """
    try:
        routes, _ = app_routing()
    except SpecError as exc:
        return _invalid(exc)
    found: list[checks.CheckMessage] = []
    if routes is not None:
        try:
            import_string(f"{routes}.websocket_urlpatterns")
        except ImportError as exc:
            # Found by runasgi (or the first WebSocket under runserver) otherwise.
            found += _invalid(SpecError('DEPLOYKIT["WEBSOCKET_ROUTES"]', routes, f"cannot be imported: {exc}"))
    unknown = Reader({}, {}).unknown_keys()
    if unknown:
        found.append(
            checks.Warning(
                f"DEPLOYKIT has settings deploykit does not know: {', '.join(unknown)}. They are ignored; "
                "check --deploy, deployconfig and runasgi refuse them.",
                hint="Fix the spelling or remove them (README lists every key).",
                id="deploykit.W012",
            )
        )
    return found


def check_deploy(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every deploy check, on one plan built once for the run."""
    try:
        app_routing()
    except SpecError:
        return []  # E001 already reported by check_app_settings
    try:
        plan = build_plan()
    except SpecError as exc:
        return _invalid(exc)
    errors: list[checks.CheckMessage] = []
    for check in DEPLOY_CHECKS:
        errors.extend(check(plan))
    return errors


def command_warnings(plan: Plan) -> list[checks.CheckMessage]:
    """What the commands say about the plan they run or write (it may carry command-line options
    that ``check --deploy``, which reads the settings only, never sees): the runtime failures and W008."""
    return runtime_failures(plan) + relative_static_url_under_sub_path(plan) + wsgi_application_unusable(plan)


def describe(message: checks.CheckMessage) -> str:
    return f"{message.msg}\nHINT: {message.hint} ({message.id})"


def runtime_failures(plan: Plan) -> list[checks.CheckMessage]:
    """The checks that predict a failure at run time: ``runasgi`` refuses to start on any of them."""
    found: list[checks.CheckMessage] = []
    for check in (
        in_memory_layer_across_processes,
        layer_missing,
        layer_disagrees,
        redis_read_timeout_below_blocking_pop,
        # Anyone who reaches the port could forge the client address: not started either.
        proxy_headers_trusted_from_anywhere,
    ):
        found.extend(check(plan))
    return found


def slot_failures(plan: Plan) -> list[checks.CheckMessage]:
    """What ``redeploy`` refuses to switch with: slots that collide, or a proxy that would not follow."""
    return slots_collide(plan)


DEPLOY_CHECKS: list[Check] = [
    in_memory_layer_across_processes,
    allowed_hosts_wildcard_with_websockets,
    ssl_header_not_set_by_proxy,
    ssl_header_believed_from_any_peer,
    proxy_headers_trusted_from_anywhere,
    redis_capacity_default,
    group_expiry_below_lifetime,
    graceful_timeout_not_below_stop_timeout,
    proxy_read_timeout_not_above_ping,
    csrf_trusted_origins_missing,
    sync_only_middleware,
    relative_static_url_under_sub_path,
    redis_read_timeout_below_blocking_pop,
    redis_pool_left_at_bounded_default,
    layer_missing,
    layer_disagrees,
    socket_outside_runtime_directory,
    hsts_preload_below_minimum,
    wsgi_application_unusable,
    async_views_under_wsgi,
    wsgi_server_not_installed,
    trusted_proxies_too_broad,
    trusted_proxies_while_server_ignores_them,
    plan_unfit_for_platform,
    release_without_lock,
    celery_without_worker,
    worker_stop_below_task_limit,
    recycled_workers_drop_websockets,
    max_requests_not_supported,
    slots_collide,
    slots_split_the_rooms,
    drain_longer_than_stop_timeout,
    metrics_path_collides,
]


def register() -> None:
    checks.register(check_app_settings, TAG)
    checks.register(check_deploy, TAG, deploy=True)
