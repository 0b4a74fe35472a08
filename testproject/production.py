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
# Per-machine knobs from the environment (the env file, the test suites):
# DEPLOYKIT_<KEY>=value for these keys; integers where the key takes one.
_ENV_KEYS = {
    "SOCKET": str,
    "BIND": str,
    "SERVER": str,
    "WORKERS": int,
    "GRACEFUL_TIMEOUT": int,
    "LISTEN_ADDRESS": str,
    "HTTP_PORT": int,
    "RUNTIME_DIRECTORY": str,
}
for _key, _type in _ENV_KEYS.items():
    _value = os.environ.get(f"DEPLOYKIT_{_key}")
    if _value:
        DEPLOYKIT[_key] = _type(_value)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [DEPLOYKIT["REDIS_URL"]], "capacity": 1500, "group_expiry": 86400},
    }
}
