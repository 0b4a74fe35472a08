# chat/consumers.py: the tutorial's async consumer. Two additions for the tests:
# a "hello" on connect with the pid (which process serves the socket) and the
# client address and scheme the server believes, and a "type" on every message.
import json
import os

from channels.generic.websocket import AsyncWebsocketConsumer


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"

        # Join room group
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)

        await self.accept()
        client = self.scope.get("client")
        hello = {"type": "hello", "pid": os.getpid(), "client": client[0] if client else None}
        await self.send(text_data=json.dumps({**hello, "scheme": self.scope.get("scheme")}))

    async def disconnect(self, close_code):
        # Leave room group
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    # Receive message from WebSocket
    async def receive(self, text_data):
        text_data_json = json.loads(text_data)
        message = text_data_json["message"]

        # Send message to room group
        await self.channel_layer.group_send(self.room_group_name, {"type": "chat.message", "message": message})

    # Receive message from room group
    async def chat_message(self, event):
        message = event["message"]

        # Send message to WebSocket
        await self.send(text_data=json.dumps({"type": "message", "message": message}))
