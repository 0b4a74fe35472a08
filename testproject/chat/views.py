from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render


def index(request: HttpRequest) -> HttpResponse:
    room = request.GET.get("room", "").strip().lower()
    if room:
        from django.utils.text import slugify

        return redirect("room", room=slugify(room) or "lobby")
    return render(request, "chat/index.html")


def room(request: HttpRequest, room: str) -> HttpResponse:
    return render(request, "chat/room.html", {"room": room})


def whoami(request: HttpRequest) -> JsonResponse:
    """What the app believes about the client: the proof that proxy headers are not spoofable."""
    return JsonResponse(
        {
            "remote_addr": request.META.get("REMOTE_ADDR"),
            "scheme": request.scheme,
            "is_secure": request.is_secure(),
            "pid": os.getpid(),
            "script_name": request.META.get("SCRIPT_NAME", ""),
        }
    )
