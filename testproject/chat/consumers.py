from __future__ import annotations

import os
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """Joins the room's group; every message goes to everyone in the room."""

    async def connect(self) -> None:
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = f"chat.{self.room}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # The pid tells tests (and curious operators) which process serves the socket.
        user = self.scope.get("user")
        await self.send_json(
            {
                "type": "hello",
                "room": self.room,
                "pid": os.getpid(),
                "user": getattr(user, "username", "") or "anonymous",
                "client": list(self.scope.get("client") or []),
                "scheme": self.scope.get("scheme", "ws"),
            }
        )

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        text = str(content.get("message", ""))[:2000]
        if text:
            await self.channel_layer.group_send(
                self.group, {"type": "chat.message", "message": text, "pid": os.getpid()}
            )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "message": event["message"], "pid": event["pid"]})


class EchoConsumer(AsyncWebsocketConsumer):
    """Sends every frame back as it came: the benchmark's WebSocket echo (bench/)."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)
