"""The ProtocolTypeRouter factory: a project's asgi.py in three lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

ASGIApp = Any


async def lifespan(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """Complete startup and shutdown, so servers that speak lifespan log no error."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_application(
    websocket_urlpatterns: Sequence[Any] | None = None,
    *,
    http_application: ASGIApp | None = None,
) -> Any:
    """Return a channels ``ProtocolTypeRouter`` for the project.

    - ``http``: Django's ASGI application (``http_application`` to replace
      it), behind the readiness endpoint when ``DEPLOYKIT["HEALTH_PATH"]`` is set;
    - ``websocket``: ``AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes)))``
      with ``websocket_urlpatterns``, or the ``websocket_urlpatterns`` of the
      module named by ``DEPLOYKIT["WEBSOCKET_ROUTES"]``;
    - ``lifespan``: answered.
    """
    # Django's app must exist before consumers (and the auth middleware,
    # which imports models) are imported: the Channels docs' order.
    from django.core.asgi import get_asgi_application

    django_app = get_asgi_application() if http_application is None else http_application

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.apps import apps
    from django.utils.module_loading import import_string

    from deploykit.conf import django_setting
    from deploykit.health import ReadinessMiddleware
    from deploykit.plan import app_routing

    # Only the keys the running app needs: a deploy-only setting (a container
    # image, a port) that is invalid must not take the site down.
    routes, health_path = app_routing()
    if websocket_urlpatterns is None:
        websocket_urlpatterns = [] if routes is None else import_string(f"{routes}.websocket_urlpatterns")
    http: ASGIApp = django_app
    if django_setting("DEBUG") and apps.is_installed("django.contrib.staticfiles"):
        # Development: serve static files like runserver does (never with DEBUG off).
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        http = ASGIStaticFilesHandler(http)
    if health_path is not None:
        http = ReadinessMiddleware(http, health_path)
    return ProtocolTypeRouter(
        {
            "http": http,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(list(websocket_urlpatterns)))),
            "lifespan": lifespan,
        }
    )
