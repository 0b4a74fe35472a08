from django.contrib import admin
from django.urls import path

from uploads import views

urlpatterns = [
    path("", views.home),
    path("upload/", views.upload),
    path("whoami/", views.whoami),
    path("admin/", admin.site.urls),
]
