"""Config targets: name -> class. ``deployconfig --list`` shows them in this order."""

from __future__ import annotations

from deploykit.plan import Plan
from deploykit.targets.asgi import Asgi
from deploykit.targets.base import RenderedFile, Target, ToolMissing, ValidationFailed

TARGETS: dict[str, type[Target]] = {cls.name: cls for cls in (Asgi,)}


def get_target(name: str, plan: Plan) -> Target:
    return TARGETS[name](plan)


__all__ = ["TARGETS", "RenderedFile", "Target", "ToolMissing", "ValidationFailed", "get_target"]
