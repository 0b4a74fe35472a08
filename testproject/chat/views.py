from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
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


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """A realistic page for the benchmark (issue 15): an authenticated session, one query, a template."""
    newest = list(get_user_model().objects.order_by("-id").values_list("username", flat=True)[:10])
    return render(request, "chat/account.html", {"newest": newest})
