from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from deploykit.plan import PLATFORMS
from deploykit.targets.base import Target, ValidationFailed


class Asgi(Target):
    name = "asgi"
    # Files of the project itself: a platform needs them as much as a host.
    platforms = frozenset(PLATFORMS)
    description = "the project's asgi.py (three lines; asgi-explicit: the Channels docs' expanded form)"
    template = "deploykit/asgi/asgi.py-tpl"
    file_name = "asgi.py"
    explicit: ClassVar[bool] = False

    def context(self) -> dict[str, object]:
        return {"plan": self.plan, "explicit": self.explicit}

    def validate(self, content: str, workdir: Path) -> None:
        try:
            compile(content, self.filename, "exec")
        except SyntaxError as exc:
            raise ValidationFailed(f"{self.filename}:{exc.lineno}: {exc.msg}") from exc


class AsgiExplicit(Asgi):
    name = "asgi-explicit"
    description = "the project's asgi.py in the Channels docs' expanded form (ProtocolTypeRouter by hand)"
    explicit = True
    # A variant of asgi.py: the bundle writes the short one.
    bundled = False
