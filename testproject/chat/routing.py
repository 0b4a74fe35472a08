from __future__ import annotations

from django.urls import path

from testproject.chat.consumers import ChatConsumer, EchoConsumer

websocket_urlpatterns = [
    path("ws/chat/<slug:room>/", ChatConsumer.as_asgi()),
    path("ws/echo/", EchoConsumer.as_asgi()),
]
