"""Rendering plain-text templates: autoescape off, project templates first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.template import Context, Engine, TemplateDoesNotExist
from django.template.loader import get_template

_OWN_DIR = Path(__file__).resolve().parent / "templates"


def render(template_name: str, context: dict[str, Any]) -> str:
    """Render ``template_name`` (``deploykit/<target>/<file>``) with autoescape off.

    A project overrides a template by putting a file of the same name in its
    own template dirs; without one (or without APP_DIRS) deploykit's is used.
    """
    try:
        # The Django backend's wrapper; its .template is the engine-level
        # Template, which takes a Context whose autoescape we control.
        template = get_template(template_name).template  # type: ignore[attr-defined]
    except TemplateDoesNotExist:
        engine = Engine(
            dirs=[str(_OWN_DIR)],
            autoescape=False,
            libraries={"deploykit_quote": "deploykit.templatetags.deploykit_quote"},
        )
        template = engine.get_template(template_name)
    return str(template.render(Context(context, autoescape=False)))
