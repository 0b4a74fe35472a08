"""Every target's output over representative plans, compared with reviewed files in tests/golden/.

Re-bless after an intended change: DEPLOYKIT_BLESS=1 .venv/bin/pytest tests/test_golden.py
(then review `git diff tests/golden`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit.plan import build_plan
from deploykit.targets import TARGETS, bundle

GOLDEN = Path(__file__).parent / "golden"
#: The targets of issue 3 (other targets keep their own golden files).
NAMES = (
    "asgi",
    "channels",
    "nginx",
    "apache",
    "caddy",
    "systemd",
    "systemd-socket",
    "env",
    "supervisor",
    "gunicorn",
    "logging",
)
PROXIES = ("nginx", "apache", "caddy")
REDIS = "redis://127.0.0.1:6379/0"
TLS = {
    "TLS_CERTIFICATE": "/etc/letsencrypt/live/example.com/fullchain.pem",
    "TLS_CERTIFICATE_KEY": "/etc/letsencrypt/live/example.com/privkey.pem",
}

#: name -> (DEPLOYKIT overrides, Django settings)
PLANS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "production": (
        {"SERVER": "uvicorn", "WORKERS": 4, "REDIS_URL": REDIS, **TLS},
        {"SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True},
    ),
    "tls-subpath": (
        {
            "SERVER": "hypercorn",
            "WORKERS": 2,
            "REDIS_URL": REDIS,
            "ROOT_PATH": "/chat",
            "ACME_WEBROOT": "/var/www/acme",
            **TLS,
        },
        {"SECURE_HSTS_SECONDS": 3600},
    ),
    "supervisor-daphne": (
        {
            "SERVER": "daphne",
            "PROCESS_MANAGER": "supervisor",
            "PROCESSES": 4,
            # The Channels docs' shape: supervisor owns a TCP socket, daphne takes fd 0.
            "BIND": "127.0.0.1:8000",
            "REDIS_URL": REDIS,
            "ENVIRONMENT": {"DJANGO_SECRET_KEY_FILE": "/etc/example/secret", "GREETING": 'a "100%" day'},
        },
        {},
    ),
    "tcp-multihost": (
        {
            "SERVER": "gunicorn",
            "WORKERS": 3,
            "BIND": "0.0.0.0:8001",
            "FORWARDED_ALLOW_IPS": ["10.0.0.5"],
            "UPSTREAM": ["10.0.0.11:8001", "10.0.0.12:8001"],
            "STICKY_SESSIONS": True,
            "LOG_FORMAT": "json",
            "LISTEN_ADDRESS": "203.0.113.7",
        },
        {
            "CHANNEL_LAYERS": {
                "default": {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {
                        "hosts": [{"sentinels": [("10.0.0.21", 26379), ("10.0.0.22", 26379)], "master_name": "chat"}]
                    },
                }
            }
        },
    ),
    "socket-activation": (
        {"SERVER": "uvicorn", "WORKERS": 2, "FD": 3, "REDIS_URL": "unix:///run/redis/redis.sock"},
        {},
    ),
}


def rendered(plan_name: str) -> dict[str, str]:
    overrides, settings = PLANS[plan_name]
    with override_settings(**settings):
        plan = build_plan(overrides)
    files: dict[str, str] = {}
    for name in NAMES:
        target = TARGETS[name](plan)
        if target.applies() or name in PROXIES:
            files.update((f.name, f.content) for f in target.files())
    guide = bundle.install_guide(plan, bundle.parts(plan))
    files[guide.name] = guide.content
    return files


@pytest.mark.parametrize("plan_name", list(PLANS))
def test_golden(plan_name: str) -> None:
    folder = GOLDEN / plan_name
    files = rendered(plan_name)
    if os.environ.get("DEPLOYKIT_BLESS") == "1":
        folder.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in folder.iterdir()) - set(files):
            (folder / stale).unlink()
        for name, content in files.items():
            (folder / name).write_text(content, encoding="utf-8")
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, content in files.items():
        expected = (folder / name).read_text(encoding="utf-8")
        assert content == expected, f"{plan_name}/{name} changed (see tests/README.md)"
