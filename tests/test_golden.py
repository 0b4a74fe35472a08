"""Every target's output over representative plans, compared with reviewed files in tests/golden/.

A file that several plans render identically is stored once, in tests/golden/_shared/ (shared.json
names its plans); tests/golden/<plan>/ holds what is that plan's alone. Re-bless after an intended change:
DEPLOYKIT_BLESS=1 .venv/bin/python -m pytest tests/test_golden.py (then review `git diff tests/golden`).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

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
    "systemd-processes",
    "supervisor-processes",
)
PROXIES = ("nginx", "apache", "caddy")
REDIS = "redis://127.0.0.1:6379/0"
TLS = {
    "TLS_CERTIFICATE": "/etc/letsencrypt/live/example.com/fullchain.pem",
    "TLS_CERTIFICATE_KEY": "/etc/letsencrypt/live/example.com/privkey.pem",
}
PROCESSES: dict[str, Any] = {
    "BACKGROUND_PROCESSES": {
        "celeryworker": {"kind": "celery-worker", "app": "config.celery_app", "concurrency": 4},
        "celerybeat": {"kind": "celery-beat", "app": "config.celery_app"},
        "mailer": {"kind": "command", "command": "sendtestemail --admins"},
    },
    "TIMERS": {"clearsessions": {"command": "clearsessions", "schedule": "30 3 * * *"}},
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
        {"SERVER": "uvicorn", "WORKERS": 2, "FD": 3, "REDIS_URL": "unix:///run/redis/redis.sock", "MAX_REQUESTS": 1000},
        {},
    ),
    # Issue 17: background processes, the release and timers, under systemd and under supervisor.
    "processes": (
        {"SERVER": "uvicorn", "WORKERS": 2, "REDIS_URL": REDIS, **PROCESSES},
        {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/1"},
    ),
    "processes-supervisor": (
        {
            "SERVER": "uvicorn",
            "PROCESS_MANAGER": "supervisor",
            "BIND": "127.0.0.1:8000",
            "REDIS_URL": REDIS,
            **PROCESSES,
        },
        {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/1"},
    ),
}


def rendered(plan_name: str) -> dict[str, str]:
    overrides, settings = PLANS[plan_name]
    files: dict[str, str] = {}
    # The files as written where no nginx is installed, whichever nginx this machine has
    # (its version picks the http2 form: tests/test_tls.py covers both).
    with mock.patch("deploykit.plan.site.installed_nginx_version", return_value=None):
        with override_settings(**settings):
            plan = build_plan(overrides)
        for name in NAMES:
            target = TARGETS[name](plan)
            if target.applies() or name in PROXIES:
                files.update((f.name, f.content) for f in target.files())
        guide = bundle.install_guide(plan, bundle.parts(plan))
    files[guide.name] = guide.content
    return files


# -- the stored files: each plan's own, and the ones several plans render alike -----------------

#: Files that two or more plans render identically, stored once; SHARED_INDEX names the plans of each.
SHARED = GOLDEN / "_shared"
SHARED_INDEX = GOLDEN / "shared.json"


def stored(plan_name: str) -> dict[str, Path]:
    """Rendered file name -> the golden file it must equal: the plan's folder, or _shared/ per the index."""
    folder = GOLDEN / plan_name
    own = {p.name: p for p in folder.iterdir()} if folder.is_dir() else {}
    index: dict[str, list[str]] = json.loads(SHARED_INDEX.read_text(encoding="utf-8"))
    shared = {key.split("~")[0]: SHARED / key for key, plans in index.items() if plan_name in plans}
    assert not own.keys() & shared.keys(), (
        f"{plan_name}: both in its folder and in _shared/: {own.keys() & shared.keys()}"
    )
    return own | shared


def layout(renderings: dict[str, dict[str, str]]) -> tuple[dict[str, dict[str, str]], dict[str, tuple[str, list[str]]]]:
    """Split every plan's files into (plan -> its own files, _shared key -> (content, plans)).

    A content that two or more plans render under one name is shared; its key is the name
    (``NAME~2``, ``NAME~3``... for the other contents of that name that are shared too).
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for plan_name, files in renderings.items():
        for name, content in files.items():
            groups.setdefault((name, content), []).append(plan_name)
    own: dict[str, dict[str, str]] = {plan_name: {} for plan_name in renderings}
    shared: dict[str, tuple[str, list[str]]] = {}
    ordered = sorted(groups.items(), key=lambda g: (g[0][0], -len(g[1]), g[1]))
    for (name, content), plans in ordered:
        if len(plans) == 1:
            own[plans[0]][name] = content
            continue
        taken = sum(1 for key in shared if key.split("~")[0] == name)
        shared[name if not taken else f"{name}~{taken + 1}"] = (content, plans)
    return own, shared


def bless() -> None:
    """Rewrite the plan folders, _shared/ and the index from today's renderings (tests/golden/containers untouched)."""
    own, shared = layout({plan_name: rendered(plan_name) for plan_name in PLANS})
    for folder, files in [*((GOLDEN / p, f) for p, f in own.items()), (SHARED, {k: c for k, (c, _) in shared.items()})]:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in folder.iterdir()} - set(files):
            (folder / stale).unlink()
        for name, content in files.items():
            path = folder / name
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
    index = {key: plans for key, (_, plans) in sorted(shared.items())}
    SHARED_INDEX.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


_blessed = False


@pytest.mark.parametrize("plan_name", list(PLANS))
def test_golden(plan_name: str) -> None:
    global _blessed
    if os.environ.get("DEPLOYKIT_BLESS") == "1" and not _blessed:
        # Every xdist worker blesses the whole tree once (the same files), one at a time.
        with open(__file__, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            bless()
        _blessed = True
    files = rendered(plan_name)
    golden = stored(plan_name)
    assert sorted(golden) == sorted(files)
    for name, content in files.items():
        expected = golden[name].read_text(encoding="utf-8")
        assert content == expected, f"{plan_name}/{name} changed, golden file {golden[name].relative_to(GOLDEN)}"


def test_layout_stores_each_shared_content_once() -> None:
    own, shared = layout(
        {
            "a": {"env": "1", "asgi.py": "x", "only-a": "z"},
            "b": {"env": "1", "asgi.py": "y"},
            "c": {"env": "2", "asgi.py": "x"},
            "d": {"env": "2", "asgi.py": "y"},
            "e": {"env": "2", "asgi.py": "w"},
        }
    )
    assert shared == {
        "asgi.py": ("x", ["a", "c"]),
        "asgi.py~2": ("y", ["b", "d"]),
        "env": ("2", ["c", "d", "e"]),
        "env~2": ("1", ["a", "b"]),
    }
    assert own == {"a": {"only-a": "z"}, "b": {}, "c": {}, "d": {}, "e": {"asgi.py": "w"}}
