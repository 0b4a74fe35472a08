from __future__ import annotations

from django.urls import path

from testproject.chat import views

urlpatterns = [
    path("", views.index, name="index"),
    path("chat/<slug:room>/", views.room, name="room"),
    path("whoami/", views.whoami, name="whoami"),
    path("account/", views.account, name="account"),
]
