"""tests.settings with a DEPLOYKIT that raises when anything reads it (tests/test_runasgi.py runs ``--help`` on it).

A project with a broken setting must still get ``--help``: a command that reads
settings (or builds the plan) in ``add_arguments`` fails here, whatever it reads.
"""

from __future__ import annotations

from typing import Any, NoReturn

from tests.settings import *  # noqa: F403

READ = "DEPLOYKIT was read"


class Unreadable:
    """Any use of the value (attribute, item, iteration, truth, isinstance against another class...) raises."""

    def _read(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(READ)

    # isinstance() against dict looks up __class__ through __getattribute__.
    __getattribute__ = __getitem__ = __iter__ = __contains__ = __len__ = __bool__ = __eq__ = _read


DEPLOYKIT = Unreadable()
