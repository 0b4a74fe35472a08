"""``ASGI_APPLICATION = "deploykit.asgi.application"`` works as it is.

DJANGO_SETTINGS_MODULE comes from the environment (the env file, runasgi).
"""

from __future__ import annotations

from deploykit.routing import build_application

application = build_application()
