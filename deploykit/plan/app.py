"""The app section: what is served (the ASGI application, routes, readiness path) and what it reaches."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps

from deploykit import validators as v
from deploykit.conf import django_setting, setting_is_set
from deploykit.exceptions import SpecError
from deploykit.plan.model import App
from deploykit.plan.reader import Reader


def build_app(r: Reader) -> App:
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or django_setting("SETTINGS_MODULE") or ""
    settings_module = v.dotted_path(settings_module, "DJANGO_SETTINGS_MODULE")
    asgi = django_setting("ASGI_APPLICATION") or "deploykit.asgi.application"
    asgi = v.dotted_path(asgi, "ASGI_APPLICATION")
    if "." not in asgi:
        raise SpecError("ASGI_APPLICATION", asgi, "must be 'module.attribute'")
    name = r.get("NAME")
    if name is None:
        top = settings_module.split(".")[0].lower().replace("_", "-")
        name = v.identifier(top, 'DEPLOYKIT["NAME"] (default: the settings package)')
    else:
        name = v.identifier(name, r.label("NAME"))
    routes, health = routing(r)
    base_dir = django_setting("BASE_DIR")
    base = v.absolute_path(str(base_dir) if base_dir is not None else os.getcwd(), "BASE_DIR")
    return App(
        name=name,
        asgi_application=asgi,
        settings_module=settings_module,
        websocket_routes=routes,
        health_path=health,
        base_dir=base,
        peer_hosts=_peer_hosts(),
        write_paths=_sqlite_directories(),
        environment_names=settings_environment(settings_module),
        requirements=_requirements(base),
        allowed_hosts=_strings("ALLOWED_HOSTS"),
        serves_websockets=routes is not None or any(apps.is_installed(a) for a in ("channels", "daphne")),
        csrf_trusted_origins=_strings("CSRF_TRUSTED_ORIGINS"),
        middleware=_strings("MIDDLEWARE"),
        root_urlconf=v.dotted_path(urlconf, "ROOT_URLCONF") if (urlconf := django_setting("ROOT_URLCONF")) else None,
        relative_urls=tuple(
            name
            for name in ("STATIC_URL", "MEDIA_URL")
            if (url := django_setting(name)) and not str(url).startswith(("/", "http://", "https://", "//"))
        ),
    )


_REQUIREMENT_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _requirements(base_dir: str) -> tuple[str, ...] | None:
    """The distributions ``BASE_DIR/requirements.txt`` names, normalised; ``deploykit[uvicorn]`` names uvicorn too."""
    try:
        text = (Path(base_dir) / "requirements.txt").read_text(encoding="utf-8")
    except OSError:
        return None
    names: list[str] = []
    for line in text.splitlines():
        match = _REQUIREMENT_RE.match(line.split("#", 1)[0])
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            extras = [e.strip().lower() for e in (match.group(2) or "").split(",") if e.strip()]
            names += [name, *(extras if name == "deploykit" else [])]
    return tuple(dict.fromkeys(names))


def _strings(setting: str) -> tuple[str, ...]:
    value = django_setting(setting) or ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SpecError(setting, value, "must be a list of strings")
    return tuple(str(item) for item in value)


def routing(r: Reader) -> tuple[str | None, str | None]:
    """(WEBSOCKET_ROUTES, HEALTH_PATH): the only keys the running application reads.

    ``build_application()`` reads these and nothing else, so a typo in a
    deploy-only setting (a container image, a port) cannot break the site.
    """
    routes, health = r.get("WEBSOCKET_ROUTES"), r.get("HEALTH_PATH")
    return (
        None if routes is None else v.dotted_path(routes, r.label("WEBSOCKET_ROUTES")),
        None if health is None else endpoint_path(health, r.label("HEALTH_PATH")),
    )


def _peer_hosts() -> tuple[str, ...]:
    hosts = _hosts_in("DATABASES", ("HOST",))
    # Django 6.1's MAILERS (SMTP backends take OPTIONS["host"]).
    hosts += _hosts_in("MAILERS", ("OPTIONS", "host"))
    # Only when set: Django 6.1 deprecates EMAIL_HOST (warning on every read),
    # and its default is localhost, which the allow list has anyway.
    email = django_setting("EMAIL_HOST") if setting_is_set("EMAIL_HOST") else None
    if email:
        hosts.append(v.hostname(email, "EMAIL_HOST"))
    hosts += _broker_hosts()
    return tuple(dict.fromkeys(hosts))


def _broker_hosts() -> list[str]:
    """Celery's broker and result backend (issue 17): the view that enqueues and the worker both reach them.

    Celery reads them from these settings when the app calls ``config_from_object("django.conf:settings",
    namespace="CELERY")``, as cookiecutter-django's does; several brokers are separated by ';'.
    """
    hosts: list[str] = []
    for setting in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        value = django_setting(setting)
        if not isinstance(value, str):
            continue
        for url in value.split(";"):
            try:
                host = urlsplit(url.strip()).hostname
            except ValueError:
                raise SpecError(setting, value, "is not a URL") from None
            if host:
                hosts.append(v.hostname(host, setting))
    return hosts


def _hosts_in(setting: str, keys: tuple[str, ...]) -> list[str]:
    """The host at ``SETTING[alias][keys...]`` for every alias that has one (DATABASES, MAILERS)."""
    hosts: list[str] = []
    entries = django_setting(setting) or {}
    for alias, entry in entries.items() if isinstance(entries, Mapping) else ():
        value = entry
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        # Empty: the driver's local default; a path: a local unix socket.
        if value and not str(value).startswith("/"):
            label = f'{setting}["{alias}"]' + "".join(f'["{key}"]' for key in keys)
            hosts.append(v.hostname(value, label))
    return hosts


def _sqlite_directories() -> tuple[str, ...]:
    """Folders of SQLite databases: SQLite writes its journal beside the file, so the folder must be writable."""
    folders: list[str] = []
    entries = django_setting("DATABASES") or {}
    for alias, entry in entries.items() if isinstance(entries, Mapping) else ():
        if not isinstance(entry, Mapping) or not str(entry.get("ENGINE", "")).endswith("sqlite3"):
            continue
        name = str(entry.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:"):
            continue
        path = v.absolute_path(name, f'DATABASES["{alias}"]["NAME"]')
        folders.append(path.rpartition("/")[0] or "/")
    return tuple(dict.fromkeys(folders))


def endpoint_path(value: Any, label: str) -> str:
    """A path the application answers itself (HEALTH_PATH, METRICS_PATH), with or without a final slash."""
    try:
        path = v.url_path(value if str(value).endswith("/") else f"{value}/", label)
    except SpecError as exc:
        # Name the value as written, not with the slash added to validate it.
        raise SpecError(label, value, exc.reason) from None
    return path if str(value).endswith("/") else path[:-1]


#: ``os.environ["X"]``, ``os.environ.get("X")``, ``os.getenv("X")``, django-environ's ``env("X")``/``env.str("X")``.
_ENV_READ_RE = re.compile(
    r"""(?:os\.environ\s*\[|os\.environ\.get\(|os\.getenv\(|\benv(?:\.\w+)?\()\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)


def settings_environment(settings_module: str) -> tuple[str, ...]:
    """Environment variables the settings read (found in their source), so INSTALL.md can say to set them.

    The plan is computed from the shell's environment; the service gets the env
    file's. Names the settings read must be in both, or the two disagree. The
    settings module's own file, and its package's modules when the settings are
    a package (``settings/base.py``, ``settings/production.py``).
    """
    try:
        spec = importlib.util.find_spec(settings_module)
    except (ImportError, ValueError):
        return ()
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return ()
    origin = Path(spec.origin)
    files = [origin]
    if origin.parent.name == "settings" or origin.name == "__init__.py":
        files = sorted(origin.parent.glob("*.py"))
    names: list[str] = []
    for path in files:
        try:
            names += _ENV_READ_RE.findall(path.read_text(encoding="utf-8"))
        except OSError:
            continue
    # DJANGO_SETTINGS_MODULE is written by deploykit itself.
    return tuple(n for n in dict.fromkeys(names) if n != "DJANGO_SETTINGS_MODULE")
