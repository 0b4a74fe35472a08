"""Quoting per output format, for values the plan has already validated.

Validators (deploykit.validators) reject what can change a file's structure;
these functions quote what is legitimately special in one format, so that
parsing the output back gives exactly the value. Templates use them through
the ``deploykit_quote`` filter library.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

_NGINX_BARE = re.compile(r"^[A-Za-z0-9._/:@+=,*\[\]-]+$")
_SYSTEMD_BARE = re.compile(r"^[A-Za-z0-9._/:@+=,-]+$")


def nginx(value: str) -> str:
    """One nginx argument: bare when inert, else double-quoted with \\ and " escaped."""
    if "$" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be an nginx literal")
    if value and _NGINX_BARE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_arg(value: str) -> str:
    """One ExecStart= argument: C-style quoted, with % and $ doubled (specifiers, expansion)."""
    if "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be a systemd argument")
    escaped = value.replace("%", "%%").replace("$", "$$")
    if escaped and _SYSTEMD_BARE.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_argv(argv: Iterable[str]) -> str:
    return " ".join(systemd_arg(a) for a in argv)


def systemd_value(value: str) -> str:
    """A plain systemd setting value (paths, names): % doubled, nothing else special."""
    if "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be a systemd value")
    return value.replace("%", "%%")


def env_file_value(value: str) -> str:
    """A value in an EnvironmentFile= (also read by docker --env-file-like tools): double-quoted."""
    if "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be an environment file value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'


def ini(value: str) -> str:
    """A supervisor (ConfigParser with interpolation) value: % doubled."""
    if "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be an ini value")
    return value.replace("%", "%%")


def shell(value: str) -> str:
    return shlex.quote(value)


def shell_argv(argv: Iterable[str]) -> str:
    return shlex.join(list(argv))


def apache(value: str) -> str:
    """One Apache directive argument: double-quoted; ${ cannot appear (validated away)."""
    if "${" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be an Apache argument")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def caddy(value: str) -> str:
    """One Caddyfile token: bare when inert, else double-quoted."""
    if "{" in value or "}" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"{value!r} cannot be a Caddyfile token")
    if value and _NGINX_BARE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
