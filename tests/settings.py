"""Small settings for deploykit's own tests (separate from testproject's)."""

from __future__ import annotations

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "deploykit-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["example.com", "www.example.com"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "deploykit",
    "testproject.chat",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
ASGI_APPLICATION = "testproject.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
STATIC_URL = "/static/"
STATIC_ROOT = "/srv/example/static"
MEDIA_URL = "/media/"
MEDIA_ROOT = "/srv/example/media"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DEPLOYKIT = {
    "NAME": "example",
    "WEBSOCKET_ROUTES": "testproject.chat.routing",
    "VIRTUALENV": "/srv/example/venv",
    "WORKING_DIRECTORY": "/srv/example/app",
}
