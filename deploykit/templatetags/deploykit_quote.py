"""Template filters that quote a value for one format: ``{{ path|nginx }}``."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from deploykit import quoting

register = template.Library()


@register.filter
def nginx(value: object) -> str:
    return quoting.nginx(str(value))


@register.filter
def systemd(value: object) -> str:
    return quoting.systemd_value(str(value))


@register.filter
def systemd_argv(value: Iterable[str]) -> str:
    return quoting.systemd_argv(value)


@register.filter
def envfile(value: object) -> str:
    return quoting.env_file_value(str(value))


@register.filter
def ini(value: object) -> str:
    return quoting.ini(str(value))


@register.filter
def shell(value: object) -> str:
    return quoting.shell(str(value))


@register.filter
def shell_argv(value: Iterable[str]) -> str:
    return quoting.shell_argv(value)


@register.filter
def supervisor_environment(value: object) -> str:
    """``{{ pairs|supervisor_environment|ini }}``: pairs or a dict of names to values."""
    items = value.items() if isinstance(value, dict) else value
    return quoting.supervisor_environment((str(k), str(v)) for k, v in items)  # type: ignore[attr-defined]


@register.filter
def apache(value: object) -> str:
    return quoting.apache(str(value))


@register.filter
def caddy(value: object) -> str:
    return quoting.caddy(str(value))


@register.filter
def json(value: object) -> str:
    return quoting.json_value(value)


@register.filter
def yaml(value: object) -> str:
    return quoting.yaml_value(value)


@register.filter
def compose(value: object) -> str:
    return quoting.compose(value)


@register.filter
def toml(value: object) -> str:
    return quoting.toml_string(str(value))
