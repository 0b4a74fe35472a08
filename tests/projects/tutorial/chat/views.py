import os

from django.http import JsonResponse
from django.shortcuts import render


def index(request):
    return render(request, "chat/index.html")


def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name})


def whoami(request):
    """Not in the tutorial: what Django believes about the client (the tests' forwarded-header probe)."""
    return JsonResponse(
        {"remote_addr": request.META.get("REMOTE_ADDR"), "is_secure": request.is_secure(), "pid": os.getpid()}
    )
