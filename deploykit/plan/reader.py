"""Reading DEPLOYKIT keys: command-line overrides win, and errors name the source."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from deploykit.conf import DEFAULTS, get_config
from deploykit.exceptions import SpecError


class Reader:
    """Two read-only layers: overrides (command-line flags), then ``DEPLOYKIT`` merged over defaults.

    Every section of the plan reads through one of these; none reaches
    around it to the settings, and nothing mutates it (:meth:`derive` makes
    a new one).
    """

    def __init__(
        self,
        overrides: Mapping[str, Any],
        labels: Mapping[str, str],
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.config: Mapping[str, Any] = MappingProxyType(dict(get_config() if config is None else config))
        self.overrides: Mapping[str, Any] = MappingProxyType(
            {k: val for k, val in overrides.items() if val is not None}
        )
        self.labels: Mapping[str, str] = MappingProxyType(dict(labels))

    def get(self, key: str) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        return self.config.get(key)

    def label(self, key: str) -> str:
        if key in self.overrides and key in self.labels:
            return self.labels[key]
        return f'DEPLOYKIT["{key}"]'

    def first_layer_setting(self, keys: Iterable[str]) -> tuple[Mapping[str, Any], bool]:
        """The layer (and whether it is the command line) that sets any of ``keys``.

        For settings that only make sense together: a command-line address
        replaces both SOCKET and BIND from the settings, not just one of them.
        """
        keys = tuple(keys)
        if any(self.overrides.get(k) is not None for k in keys):
            return self.overrides, True
        return self.config, False

    def derive(self, overrides: Mapping[str, Any], *, unset: tuple[str, ...] = ()) -> Reader:
        """A new reader with more overrides, and ``unset`` keys absent from both layers."""
        kept = {k: val for k, val in self.overrides.items() if k not in unset}
        config = {**self.config, **dict.fromkeys(unset)}
        return Reader({**kept, **overrides}, self.labels, config=config)

    def unknown_keys(self) -> list[str]:
        """Every misspelt key, each with the closest real one (``WORKER``: did you mean ``WORKERS``?)."""
        found = []
        for key in self.config:
            if key not in DEFAULTS:
                close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
                found.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return found

    def check_known_keys(self) -> None:
        unknown = self.unknown_keys()
        if unknown:
            keys = [k for k in self.config if k not in DEFAULTS]
            raise SpecError("DEPLOYKIT", keys if len(keys) > 1 else keys[0], f"unknown settings: {', '.join(unknown)}")
