"""Faithful parsers for checking quoted output, where the real tool has no parse-and-dump mode.

- :func:`nginx_args`: crossplane (a real nginx config parser) keeps escapes
  inside quoted tokens except ``\\"``; nginx itself then reads ``\\\\``,
  ``\\'``, ``\\t``, ``\\r``, ``\\n`` (src/core/ngx_conf_file.c,
  ngx_conf_read_token), so that step is applied here.
- :func:`systemd_unit`, :func:`systemd_exec`: systemd's unit-file reading
  (src/shared/conf-parser.c: comments, ``\\`` continuation, key=value strip),
  ExecStart= splitting (src/core/load-fragment.c config_parse_exec with
  extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)), ``%`` specifiers and
  exec-time ``$`` expansion (systemd.service(5), "Command lines").
- :func:`systemd_environment`: Environment= (the same word splitting, no ``$``).
- :func:`systemd_env_file`: EnvironmentFile= (src/basic/env-file.c,
  parse_env_file_internal); tests/test_fuzz.py cross-checks it with bash.

Anything that would change the structure (a specifier other than %%, a
variable, a command separator, an unterminated quote) raises Structure.
"""

from __future__ import annotations

import os
import re
from typing import Any

import crossplane


class Structure(Exception):
    """The text would not parse into the intended value: a structure change."""


_NGINX_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


def _nginx_unescape(token: str) -> str:
    out, i = [], 0
    while i < len(token):
        if token[i] == "\\" and i + 1 < len(token) and token[i + 1] in _NGINX_ESCAPES:
            out.append(_NGINX_ESCAPES[token[i + 1]])
            i += 2
        else:
            out.append(token[i])
            i += 1
    return "".join(out)


def nginx_tree(path: str | os.PathLike[str]) -> list[Any]:
    """The directive tree of an nginx file: [[name, [args], [block...] | None], ...]."""
    payload = crossplane.parse(str(path), single=True, check_ctx=False, check_args=False, comments=True)
    if payload["errors"]:
        raise Structure(payload["errors"])

    def tree(block: list[dict[str, Any]]) -> list[Any]:
        return [
            [d["directive"], [_nginx_unescape(a) for a in d["args"]], tree(d["block"]) if "block" in d else None]
            for d in block
        ]

    return tree(payload["config"][0]["parsed"])


_WS = " \t\n\r"
_C_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}


def _cunescape_one(text: str, i: int) -> tuple[str, int]:
    """(character, length consumed) for the escape starting after a backslash at text[i]."""
    if i >= len(text):
        raise Structure("trailing backslash")
    c = text[i]
    if c in _C_SIMPLE:
        return _C_SIMPLE[c], 1
    for prefix, size in (("x", 2), ("u", 4), ("U", 8)):
        if c == prefix:
            digits = text[i + 1 : i + 1 + size]
            if len(digits) != size or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise Structure(f"bad \\{c} escape")
            return chr(int(digits, 16)), 1 + size
    if c in "01234567":
        digits = text[i : i + 3]
        if not re.fullmatch(r"[0-7]{3}", digits):
            raise Structure("bad octal escape")
        return chr(int(digits, 8)), 3
    raise Structure(f"unknown escape \\{c}")


def _specifiers(word: str) -> str:
    """systemd resolves %X in each word; only %% is a literal."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "%":
            if word[i + 1 : i + 2] != "%":
                raise Structure(f"specifier in {word!r}")
            out.append("%")
            i += 2
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def _exec_variables(word: str) -> str:
    """At exec time $$ is $, and $NAME / ${NAME} expand."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "$":
            nxt = word[i + 1 : i + 2]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "{" or re.fullmatch(r"[A-Za-z_]", nxt or "-"):
                raise Structure(f"variable in {word!r}")
        out.append(word[i])
        i += 1
    return "".join(out)


def systemd_exec(line: str) -> list[str]:
    """The argv systemd executes for an ExecStart= value."""
    words: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _WS:
            i += 1
        if i >= n:
            break
        if line[i] == ";" and (i + 1 == n or line[i + 1] in _WS):
            raise Structure("command separator")
        if line[i : i + 2] == "\\;" and (i + 2 == n or line[i + 2] in _WS):
            words.append(";")
            i += 2
            continue
        word, i = _unquoted_word(line, i)
        words.append(word)
    if words and words[0][:1] in ("@", "-", ":", "+", "!"):
        raise Structure("exec prefix")
    return [_exec_variables(_specifiers(w)) for w in words]


def _unquoted_word(line: str, i: int) -> tuple[str, int]:
    """extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) at ``line[i]`` (not whitespace): the word, its end."""
    n = len(line)
    word: list[str] = []
    quote = None
    while i < n:
        c = line[i]
        if quote is None and c in _WS:
            break
        if c == quote:
            quote = None
            i += 1
        elif quote is None and c in "\"'":
            quote = c
            i += 1
        elif c == "\\":
            char, used = _cunescape_one(line, i + 1)
            word.append(char)
            i += 1 + used
        else:
            word.append(c)
            i += 1
    if quote is not None:
        raise Structure("unterminated quote")
    return "".join(word), i


def systemd_environment(raw: str) -> dict[str, str]:
    """The variables one Environment= value sets.

    src/core/load-fragment.c config_parse_environ: words split like ExecStart=
    (quotes, C escapes), ``%`` specifiers resolved, no ``$`` expansion. systemd
    skips an invalid assignment with a warning; here it raises.
    """
    out: dict[str, str] = {}
    i, n = 0, len(raw)
    while True:
        while i < n and raw[i] in _WS:
            i += 1
        if i >= n:
            return out
        word, i = _unquoted_word(raw, i)
        key, eq, value = _specifiers(word).partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise Structure(f"not an assignment: {word!r}")
        out[key] = value


def systemd_unit(text: str) -> list[tuple[str, str, str]]:
    """(section, key, raw value) for each assignment, as systemd reads the file."""
    if "\x00" in text:
        raise Structure("NUL")
    # read_line() ends a line at \n, \r or \r\n.
    lines = re.split(r"\r\n|\r|\n", text)
    out: list[tuple[str, str, str]] = []
    section = ""
    continued = ""
    for raw in lines:
        line = continued + raw
        continued = ""
        stripped = line.strip(_WS)
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.endswith("\\"):
            continued = stripped[:-1] + " "
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            continue
        key, eq, value = stripped.partition("=")
        if not eq:
            raise Structure(f"not an assignment: {stripped!r}")
        out.append((section, key.strip(_WS), value.strip(_WS)))
    if continued:
        out_value = continued.strip(_WS)
        raise Structure(f"dangling continuation {out_value!r}")
    return out


def systemd_value(raw: str) -> str:
    return _specifiers(raw)


def systemd_env_file(text: str) -> dict[str, str]:
    """The variables systemd reads from an EnvironmentFile=."""
    result: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    newline = "\n\r"

    def emit() -> None:
        result["".join(key).rstrip(_WS)] = "".join(value)

    for c in text + "\n":
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in _WS:
                state, key, value = "key", [c], []
        elif state == "key":
            if c in newline:
                state = "pre_key"
            elif c == "=":
                state = "pre_value"
            else:
                key.append(c)
        elif state == "pre_value":
            if c in newline:
                emit()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in _WS:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in newline:
                while value and value[-1] in _WS:
                    value.pop()
                emit()
                state = "pre_key"
            elif c == "\\":
                state = "value_escape"
            else:
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in newline:
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in '"\\`$':
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in newline:
                state = "pre_key"
        elif state == "comment_escape":
            state = "comment"
    if state not in ("pre_key", "comment"):
        raise Structure(f"unterminated value (state {state})")
    return result
