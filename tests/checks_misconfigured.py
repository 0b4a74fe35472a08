"""A project with every mistake deploykit's deploy checks know (tests/test_checks.py runs check --deploy on it)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import DEPLOYKIT

ALLOWED_HOSTS = ["*", "chat.example.com"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_SSL", "on")
CSRF_TRUSTED_ORIGINS: list[str] = []
MIDDLEWARE = ["tests.test_checks.SyncOnlyMiddleware"]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "group_expiry": 60},
    }
}
DEPLOYKIT = {
    **DEPLOYKIT,
    "SERVER_NAMES": ["chat.example.com"],
    "BIND": "0.0.0.0:8000",
    "FORWARDED_ALLOW_IPS": "*",
    "TLS_CERTIFICATE": "/etc/ssl/chat.pem",
    "TLS_CERTIFICATE_KEY": "/etc/ssl/chat.key",
    "PROXY_READ_TIMEOUT": 10,
    "TRUSTED_PROXIES": ["0.0.0.0/0"],
}
