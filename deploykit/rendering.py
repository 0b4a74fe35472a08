"""Rendering plain-text templates: one engine, autoescape off, the project's templates first.

Like Django's own ``startproject`` (django/core/management/templates.py), the
files are rendered by a template ``Engine`` of deploykit's own with autoescape
off, not through the project's HTML backend: an HTML-escaped ``&`` or ``'`` in
a systemd unit or an nginx site would change what it means.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Context, Engine

_OWN_DIR = Path(__file__).resolve().parent / "templates"
_LIBRARIES = {"deploykit_quote": "deploykit.templatetags.deploykit_quote"}


@functools.cache
def engine() -> Engine:
    """The project's template dirs (TEMPLATES' DIRS) first, then the apps' (a project's own app can
    override ``deploykit/<target>/<file>``), then deploykit's."""
    from deploykit.conf import django_setting

    dirs = [str(d) for backend in django_setting("TEMPLATES") or [] for d in backend.get("DIRS", [])]
    return Engine(dirs=[*dirs, str(_OWN_DIR)], app_dirs=True, autoescape=False, libraries=_LIBRARIES)


def render(template_name: str, context: dict[str, Any]) -> str:
    """Render ``template_name`` (``deploykit/<target>/<file>``) with autoescape off."""
    template = engine().get_template(template_name)
    return str(template.render(Context(context, autoescape=False)))


@receiver(setting_changed)
def _clear_engine(*, setting: str, **kwargs: Any) -> None:
    if setting in ("TEMPLATES", "INSTALLED_APPS"):
        engine.cache_clear()
