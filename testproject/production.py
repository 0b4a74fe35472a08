"""The demo as deployed: DEBUG off, Redis channel layer, unix socket behind nginx.

Everything that varies per machine comes from the environment (the env file
that ``deployconfig env`` writes).
"""

from __future__ import annotations

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import BASE_DIR, DEPLOYKIT

DEBUG = False
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "chat.example.com").split(",")
CSRF_TRUSTED_ORIGINS = [f"https://{h}" for h in ALLOWED_HOSTS]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_SSL_REDIRECT = False  # nginx redirects to https before Django sees the request
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(BASE_DIR / "var" / "static"))
MEDIA_ROOT = os.environ.get("MEDIA_ROOT", str(BASE_DIR / "var" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

DEPLOYKIT = {
    **DEPLOYKIT,
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "TLS_CERTIFICATE": "/etc/letsencrypt/live/chat.example.com/fullchain.pem",
    "TLS_CERTIFICATE_KEY": "/etc/letsencrypt/live/chat.example.com/privkey.pem",
}
del DEPLOYKIT["BIND"]
for _key, _env in (("SOCKET", "DEPLOYKIT_SOCKET"), ("SERVER", "DEPLOYKIT_SERVER")):
    if os.environ.get(_env):
        DEPLOYKIT[_key] = os.environ[_env]
# Knobs without a command-line flag, for a stack on loopback ports run by an
# unprivileged user (tests/e2e sets them): numbers and lists from strings.
for _key, _env, _convert in (
    ("GRACEFUL_TIMEOUT", "DEPLOYKIT_GRACEFUL_TIMEOUT", int),
    ("HTTP_PORT", "DEPLOYKIT_HTTP_PORT", int),
    ("LISTEN_ADDRESS", "DEPLOYKIT_LISTEN_ADDRESS", str),
    ("USER", "DEPLOYKIT_USER", str),
    ("GROUP", "DEPLOYKIT_GROUP", str),
    ("RUNTIME_DIRECTORY", "DEPLOYKIT_RUNTIME_DIRECTORY", str),
    ("UPSTREAM", "DEPLOYKIT_UPSTREAM", lambda value: value.split(",")),
    ("STICKY_SESSIONS", "DEPLOYKIT_STICKY_SESSIONS", lambda value: value == "1"),
):
    if os.environ.get(_env):
        DEPLOYKIT[_key] = _convert(os.environ[_env])
if os.environ.get("DEPLOYKIT_TLS") == "off":
    # Plain HTTP (a loopback test stack has no certificate).
    del DEPLOYKIT["TLS_CERTIFICATE"], DEPLOYKIT["TLS_CERTIFICATE_KEY"]
if os.environ.get("FORCE_SCRIPT_NAME"):
    # Served under a sub-path: static URLs follow the prefix.
    FORCE_SCRIPT_NAME = os.environ["FORCE_SCRIPT_NAME"]
    STATIC_URL = "static/"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [DEPLOYKIT["REDIS_URL"]], "capacity": 1500, "group_expiry": 86400},
    }
}
