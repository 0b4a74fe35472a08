"""A URLconf with async views, for W014 (split serving runs them through async_to_sync under WSGI)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views import View


async def live(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("sync")


class Stream(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("async class")


urlpatterns = [
    path("live/", live),
    path("plain/", plain),
    path("nested/", include([path("stream/", Stream.as_view())])),
]
