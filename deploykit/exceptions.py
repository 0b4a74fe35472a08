from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: Characters of a value an error message shows; the rest is counted, not printed.
MAX_SHOWN = 200
#: user:password@ in a URL, and password= / passwd= / secret= query arguments (redis-py reads ?password=).
_USERINFO_PASSWORD = re.compile(r"(?<=://)([^/@:\s]*):([^/@\s]*)@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|secret|token)=)[^&#\s]*")


def shown(setting: str, value: Any) -> str:
    """``value`` as an error message may show it: passwords and environment values
    redacted, long values cut (issue 14 item 12). Messages reach terminals, CI logs
    and bug reports."""
    if "ENVIRONMENT" in setting and isinstance(value, str):
        return "'***' (the value is not shown)"
    text = repr(value)
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m.group(1)}:***@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}***", text)
    if len(text) > MAX_SHOWN:
        size = f"{len(value)} characters" if isinstance(value, (str, bytes, list, tuple, dict)) else "long"
        text = f"{text[:MAX_SHOWN]}... ({size})"
    return text


class SpecError(ImproperlyConfigured):
    """A value of the deployment is invalid; names the setting and shows the value (secrets redacted)."""

    def __init__(self, setting: str, value: Any, reason: str) -> None:
        self.setting = setting
        self.value = value
        self.reason = reason
        super().__init__(f"{setting} = {shown(setting, value)}: {reason}")
