"""Server backends: name -> class. Each builds its argv from the plan."""

from __future__ import annotations

from deploykit.plan import Plan
from deploykit.servers.base import ServerBackend
from deploykit.servers.daphne import Daphne
from deploykit.servers.granian import Granian
from deploykit.servers.gunicorn import Gunicorn
from deploykit.servers.hypercorn import Hypercorn
from deploykit.servers.uvicorn import Uvicorn

BACKENDS: dict[str, type[ServerBackend]] = {cls.name: cls for cls in (Daphne, Uvicorn, Gunicorn, Granian, Hypercorn)}


def get_backend(plan: Plan) -> ServerBackend:
    """The backend object for the plan's server."""
    return BACKENDS[plan.server.backend](plan)


__all__ = ["BACKENDS", "ServerBackend", "get_backend"]
