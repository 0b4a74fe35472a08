"""The demo on embedded defaults: SQLite, in-memory channel layer, no Redis.

``testproject.production`` is the same project as it is deployed.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A development key; production.py takes the real one from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "deploykit-demo-insecure-key-only-for-development")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "deploykit",
    "testproject.chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

ASGI_APPLICATION = "testproject.asgi.application"
# HTTP under split serving (DEPLOYKIT["WSGI_SERVER"]); unused otherwise.
WSGI_APPLICATION = "testproject.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", str(BASE_DIR / "db.sqlite3")),
    }
}
# Signed-cookie sessions: the chat needs no table, so the demo runs before migrate.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "var" / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

DEPLOYKIT = {
    "NAME": "testproject",
    "WEBSOCKET_ROUTES": "testproject.chat.routing",
    "HEALTH_PATH": "/-/ready",
    # Development: like runserver. production.py binds the unix socket.
    "BIND": "127.0.0.1:8000",
}
