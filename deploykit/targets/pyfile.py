"""What the targets that write Python (settings snippets, gunicorn.conf.py) share."""

from __future__ import annotations

import json
from typing import Any

from deploykit.targets.base import ValidationFailed


def check_python(content: str, filename: str) -> None:
    """Compile ``content``: a syntax error fails with its line."""
    try:
        compile(content, filename, "exec")
    except SyntaxError as exc:
        raise ValidationFailed(f"{filename}:{exc.lineno}: {exc.msg}") from exc


def literal(value: Any, indent: int = 0) -> str:
    """``value`` (dicts, lists, str, int, bool, None) as Python source, laid out like black would."""
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, dict) and value:
        items = "".join(f"{inner}{literal(k)}: {literal(v, indent + 4)},\n" for k, v in value.items())
        return "{\n" + items + pad + "}"
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, (str, int)) for v in value) and len(value) <= 4:
            return "[" + ", ".join(literal(v) for v in value) + "]"
        items = "".join(f"{inner}{literal(v, indent + 4)},\n" for v in value)
        return "[\n" + items + pad + "]"
    if isinstance(value, str):
        # JSON's string escapes are Python's; double quotes as black writes them.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bool, int)) or value is None:
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return "{}" if isinstance(value, dict) else "[]"
    raise TypeError(f"no Python literal for {value!r}")
