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
# Per-machine knobs from the environment (the env file, the test suites, the
# benchmark): DEPLOYKIT_<KEY>=value for these keys, converted from strings.
_ENV_KEYS = {
    "SOCKET": str,
    "BIND": str,
    "SERVER": str,
    "WORKERS": int,
    "GRACEFUL_TIMEOUT": int,
    "DRAIN_TIMEOUT": int,
    "PROCESSES": int,
    "WEBSOCKET_MAX_SIZE": int,
    "WEBSOCKET_COMPRESSION": lambda value: value == "1",
    "HTTP_PORT": int,
    "LISTEN_ADDRESS": str,
    "USER": str,
    "GROUP": str,
    "RUNTIME_DIRECTORY": str,
    "UPSTREAM": lambda value: value.split(","),
    "STICKY_SESSIONS": lambda value: value == "1",
    "WSGI_SERVER": str,
    "WSGI_WORKERS": int,
    "WSGI_THREADS": int,
    "WSGI_BIND": str,
    # Two slots (issue 16): "blue,green", the proxy's upstream file, the process manager driving them.
    "SLOTS": lambda value: tuple(value.split(",")),
    "UPSTREAM_FILE": str,
    "PROCESS_MANAGER": str,
    # The proxy whose upstream file `manage.py redeploy` writes (bench.redeploy --proxy).
    "PROXY": str,
    "METRICS_PATH": str,
    "GRANIAN_METRICS_PORT": int,
}
for _key, _convert in _ENV_KEYS.items():
    if os.environ.get(f"DEPLOYKIT_{_key}"):
        DEPLOYKIT[_key] = _convert(os.environ[f"DEPLOYKIT_{_key}"])
if os.environ.get("DEPLOYKIT_TLS") == "off":
    # Plain HTTP (a loopback test stack has no certificate).
    del DEPLOYKIT["TLS_CERTIFICATE"], DEPLOYKIT["TLS_CERTIFICATE_KEY"]
if os.environ.get("FORCE_SCRIPT_NAME"):
    # Served under a sub-path: static URLs follow the prefix. Absolute, not the
    # relative "static/": Django caches the prefixed value on first access, and
    # under ASGI (django.setup(set_prefix=False)) that can happen before any
    # request set the prefix, leaving pages pointing at /static/ (the e2e
    # sub-path variant saw it).
    FORCE_SCRIPT_NAME = os.environ["FORCE_SCRIPT_NAME"]
    STATIC_URL = f"{FORCE_SCRIPT_NAME}/static/"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # As `deployconfig channels` writes it: no read timeout. redis-py 8's 5 s
            # default equals the layer's 5 s BZPOPMIN (idle consumers crash,
            # https://github.com/django/channels_redis/issues/422), and a longer one
            # makes cancelled receives hang until the next message.
            # max_connections: redis-py 8's pool holds 100 connections and raises MaxConnectionsError on the
            # 101st instead of waiting; a burst of reconnects (a restart's thundering herd, or 300 clients
            # on a starved machine in bench/redeploy.py) made group_add/group_send fail and drop sockets.
            "hosts": [{"address": DEPLOYKIT["REDIS_URL"], "socket_timeout": None, "max_connections": 1000}],
            "capacity": 1500,
            "group_expiry": 86400,
        },
    }
}
