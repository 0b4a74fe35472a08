"""Quoting per output format, for values the plan has already validated.

Validators (deploykit.validators) reject what can change a file's structure;
these functions quote what is legitimately special in one format, so that
parsing the output back gives exactly the value. Templates use them through
the ``deploykit_quote`` filter library.
"""

from __future__ import annotations

import json
import re
import shlex
import unicodedata
from collections.abc import Iterable

_NGINX_BARE = re.compile(r"[A-Za-z0-9._/:@+=,*\[\]-]+")
_CADDY_BARE = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._/=,+-]*")
_SYSTEMD_BARE = re.compile(r"[A-Za-z0-9._/:@+=,-]+")
#: ExecStart= prefixes that systemd reads off the first word (systemd.service(5), "Command lines").
_SYSTEMD_EXEC_PREFIXES = ("@", "-", ":", "+", "!")
#: Whitespace before ; or # starts an inline comment in supervisor's ConfigParser
#: (inline_comment_prefixes=(";", "#"), whitespace as str.isspace() sees it).
_INI_COMMENT = re.compile(r"\s[;#]")


def _one_line(value: str, fmt: str) -> str:
    # Validators reject these already; a quoting function never emits them,
    # whatever it is given (a line break would start a new directive).
    if any(c != "\t" and unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value):
        raise ValueError(f"{value!r} cannot be {fmt}: line breaks and control characters are not allowed")
    return value


def nginx(value: str) -> str:
    """One nginx argument: bare when inert, else double-quoted with \\ and " escaped.

    Inside quotes nginx reads \\", \\\\, \\t, \\r, \\n as escapes (ngx_conf_read_token);
    ``$`` would still start a variable in many directives, so it is refused.
    """
    _one_line(value, "an nginx argument")
    if "$" in value:
        raise ValueError(f"{value!r} cannot be an nginx literal ($ starts a variable)")
    if _NGINX_BARE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_arg(value: str, *, first: bool = False) -> str:
    """One ExecStart= argument: C-style quoted, with % and $ doubled (specifiers, expansion).

    systemd splits the line with C unquoting/unescaping, then resolves ``%``
    specifiers in each word and, at exec time, ``$VAR``/``$$``
    (https://www.freedesktop.org/software/systemd/man/latest/systemd.service.html#Command%20lines).
    The first word is quoted when it starts with a prefix character (``-``, ``@``...).
    """
    _one_line(value, "a systemd argument")
    escaped = value.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_BARE.fullmatch(escaped) and not (first and escaped.startswith(_SYSTEMD_EXEC_PREFIXES)):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_argv(argv: Iterable[str]) -> str:
    return " ".join(systemd_arg(a, first=i == 0) for i, a in enumerate(argv))


def systemd_value(value: str) -> str:
    """A plain systemd setting value (paths, names): % doubled.

    systemd strips the value's surrounding whitespace and joins a line ending
    in a backslash with the next, so neither can be written.
    """
    _one_line(value, "a systemd value")
    if value != value.strip() or value.endswith("\\"):
        raise ValueError(f"{value!r} cannot be a systemd value (edge whitespace or a trailing backslash)")
    return value.replace("%", "%%")


def env_file_value(value: str) -> str:
    """A value in a systemd EnvironmentFile= (also a POSIX shell ``. file``): double-quoted.

    systemd's parser (src/basic/env-file.c) takes \\ before one of ``"\\`$`` as
    that character inside double quotes, exactly as the shell does. Not for
    ``docker --env-file``, which takes values literally (quotes included).
    """
    _one_line(value, "an environment file value")
    return '"' + re.sub(r'([\\"$`])', r"\\\1", value) + '"'


def ini(value: str) -> str:
    """A supervisor (ConfigParser, then ``%(name)s`` expansion) value: % doubled.

    ConfigParser strips the value and ends it at whitespace followed by ; or #,
    and has no escape for either: such values are refused.
    """
    _one_line(value, "an ini value")
    if value != value.strip() or _INI_COMMENT.search(value):
        raise ValueError(f"{value!r} cannot be an ini value (edge whitespace, or ' ;' / ' #')")
    return value.replace("%", "%%")


def shell(value: str) -> str:
    """One POSIX shell word (shlex.quote), also safe inside an ini value.

    Inside single quotes ``''`` is an empty close-and-reopen, so it is put
    between whitespace and a following ; or # that ConfigParser would take for
    a comment: the word stays the same for sh and shlex.split.
    """
    _one_line(value, "a shell word")
    return _INI_COMMENT.sub(lambda m: m.group(0)[0] + "''" + m.group(0)[1], shlex.quote(value))


def shell_argv(argv: Iterable[str]) -> str:
    return " ".join(shell(a) for a in argv)


def supervisor_environment(pairs: Iterable[tuple[str, str]]) -> str:
    """supervisor's ``environment=KEY="value",...`` (before :func:`ini`).

    supervisor splits it with a non-POSIX shlex (no escapes at all) and strips
    every quote character from both ends of each value
    (supervisor.datatypes.dict_of_key_value_pairs), so a value holding both
    kinds of quotes, or starting or ending with one, cannot be written.
    """
    parts = []
    for name, value in pairs:
        _one_line(value, "a supervisor environment value")
        quote = "'" if '"' in value else '"'
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if quote in value or value[:1] in ("'", '"') or value[-1:] in ("'", '"') or _INI_COMMENT.search(value):
            raise ValueError(f"{name}={value!r} cannot be written in supervisor's environment=")
        if "%(here)s" in value:
            # supervisor substitutes %(here)s before ConfigParser reads %%: no escape survives it.
            raise ValueError(f"{name}={value!r}: supervisor expands %(here)s before any escape applies")
        parts.append(f"{name}={quote}{value}{quote}")
    return ",".join(parts)


def apache(value: str) -> str:
    """One Apache directive argument: double-quoted, \\ and " escaped (ap_getword_conf).

    ``${`` is expanded from Define'd variables before parsing and cannot be escaped.
    """
    _one_line(value, "an Apache argument")
    if "${" in value:
        raise ValueError(f"{value!r} cannot be an Apache argument (${{ expands a variable)")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def caddy(value: str) -> str:
    """One Caddyfile token: bare when inert, else backtick-quoted (raw), else double-quoted.

    Inside double quotes the Caddyfile lexer knows only the \\" escape (a
    backslash is literal), so a value with both a backtick and a backslash is
    refused; braces are placeholders wherever they appear.
    """
    _one_line(value, "a Caddyfile token")
    if "{" in value or "}" in value:
        raise ValueError(f"{value!r} cannot be a Caddyfile token (braces are placeholders)")
    if _CADDY_BARE.fullmatch(value):
        return value
    if "`" not in value:
        return f"`{value}`"
    if "\\" not in value:
        return '"' + value.replace('"', '\\"') + '"'
    raise ValueError(f"{value!r} cannot be a Caddyfile token (both ` and \\)")


def json_value(value: object) -> str:
    """A JSON literal: a Dockerfile exec-form array, or a YAML scalar.

    A JSON string is a YAML double-quoted scalar with the same value
    (https://yaml.org/spec/1.2.2/#double-quoted-style), so Compose and
    Kubernetes files quote every string with this too.
    """
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def toml_string(value: str) -> str:
    """A TOML basic string: ``"`` and ``\\`` escaped, every control character as ``\\uXXXX``.

    TOML forbids U+0000-U+001F (tab aside) and U+007F unescaped in a basic string and has no
    escape for a lone surrogate, which UTF-8 cannot carry anyway (https://toml.io/en/v1.0.0#string).
    """
    if any(unicodedata.category(c) == "Cs" for c in value):
        raise ValueError(f"{value!r} cannot be a TOML string (a lone surrogate)")
    out = []
    for c in value:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def procfile_line(name: str, command: str) -> str:
    """``name: command``, one Procfile line (the platform runs ``command`` with a POSIX shell).

    The process type is what Heroku and honcho accept (``[A-Za-z0-9_-]+``); the command is one line,
    whose words the caller quotes with :func:`shell`.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"{name!r} cannot be a Procfile process type (letters, digits, _ and - only)")
    _one_line(command, "a Procfile command")
    return f"{name}: {command}"


_SURROGATE_PAIR_RE = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def yaml_value(value: object) -> str:
    """A YAML double-quoted scalar (or flow list): JSON, but characters beyond the BMP as ``\\UXXXXXXXX``.

    JSON writes them as a surrogate pair (``\\ud83d\\ude80``), which Go's YAML
    (kubectl) refuses and docker-compose decodes as two lone surrogates; YAML's
    own escape is ``\\U`` with eight hex digits (https://yaml.org/spec/1.2.2/#escaped-characters).
    """

    def combine(match: re.Match[str]) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"

    return _SURROGATE_PAIR_RE.sub(combine, json_value(value))


def compose(value: object) -> str:
    """A Compose file scalar (or list of strings): JSON/YAML-quoted, with ``$`` doubled.

    Compose interpolates ``$VAR`` in every value; ``$$`` is a literal ``$``
    (https://docs.docker.com/reference/compose-file/interpolation/).
    """
    if isinstance(value, (list, tuple)):
        return yaml_value([str(v).replace("$", "$$") for v in value])
    return yaml_value(str(value).replace("$", "$$"))
