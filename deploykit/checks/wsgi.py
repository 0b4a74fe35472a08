"""Checks on split serving (issue 15): the WSGI side's application, its views, its server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core import checks
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.module_loading import import_string

from deploykit.plan import Plan


def wsgi_application_unusable(plan: Plan) -> list[checks.CheckMessage]:
    if plan.wsgi is None:
        return []
    # Unset, the plan serves Django's own handler (deploykit.wsgi), as runserver does.
    path = plan.wsgi.application
    try:
        import_string(path)
    except Exception as exc:  # noqa: BLE001 (whatever the import raises is the reason to show)
        problem = f"WSGI_APPLICATION {path!r} cannot be imported: {type(exc).__name__}: {exc}"
    else:
        return []
    return [
        checks.Warning(
            f"{problem}: the WSGI server ({plan.wsgi.backend}) that DEPLOYKIT['WSGI_SERVER'] puts HTTP on has no "
            "application, so every page would fail while WebSockets work.",
            hint="Fix the module WSGI_APPLICATION names (startproject writes myproject/wsgi.py), or unset it to serve "
            "Django's own WSGI handler.",
            id="deploykit.W013",
        )
    ]


def _views(patterns: list[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def async_views_under_wsgi(plan: Plan) -> list[checks.CheckMessage]:
    if plan.wsgi is None or plan.app.root_urlconf is None:
        return []
    try:
        patterns = get_resolver(plan.app.root_urlconf).url_patterns
    except Exception:  # noqa: BLE001
        return []  # Django's own URL checks report a URLconf that does not load
    found = []
    for view in _views(patterns):
        # Class-based views: as_view() marks the function when the class's handlers are async.
        if iscoroutinefunction(view):
            target = getattr(view, "view_class", view)
            found.append(f"{target.__module__}.{target.__qualname__}")
    if not found:
        return []
    names = list(dict.fromkeys(found))
    return [
        checks.Warning(
            f"{len(names)} async view{'s' if len(names) != 1 else ''} would run through async_to_sync under the WSGI "
            f"server (an event loop per request, in a worker thread): {', '.join(names)}.",
            hint="Split serving suits sync views; serve these from the ASGI side (route their paths to it in the "
            "proxy) or leave DEPLOYKIT['WSGI_SERVER'] unset.",
            id="deploykit.W014",
        )
    ]


def wsgi_server_not_installed(plan: Plan) -> list[checks.CheckMessage]:
    if plan.wsgi is None:
        return []
    from deploykit.servers.wsgi import WSGI_BACKENDS

    backend = WSGI_BACKENDS[plan.wsgi.backend]
    if backend.is_installed():
        return []
    return [
        checks.Warning(
            f"The WSGI server {backend.name} (DEPLOYKIT['WSGI_SERVER']) is not installed in this environment.",
            hint=f"pip install 'deploykit[{backend.extra}]' (and list it in requirements.txt).",
            id="deploykit.W015",
        )
    ]
