"""deploykit: one validated deployment plan for a Django + Channels project."""

from __future__ import annotations

__version__ = "0.1.0"
