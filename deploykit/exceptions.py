from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class SpecError(ImproperlyConfigured):
    """A value of the deployment is invalid; names the setting and shows the value."""

    def __init__(self, setting: str, value: Any, reason: str) -> None:
        self.setting = setting
        self.value = value
        self.reason = reason
        super().__init__(f"{setting} = {value!r}: {reason}")
