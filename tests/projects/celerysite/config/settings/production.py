from .base import *  # noqa: F403
from .base import os

DEPLOYKIT = {
    "NAME": "celerysite",
    "BACKGROUND_PROCESSES": {
        "celeryworker": {"kind": "celery-worker", "app": "config.celery_app", "concurrency": 2},
        "celerybeat": {"kind": "celery-beat", "app": "config.celery_app"},
    },
    "TIMERS": {"clearsessions": {"command": "clearsessions", "schedule": "30 3 * * *"}},
}
if os.environ.get("CELERYSITE_NO_BEAT"):
    # beat keeps its schedule in /var/lib/celerysite-celerybeat, which a test run does not create.
    del DEPLOYKIT["BACKGROUND_PROCESSES"]["celerybeat"]
# Per machine (the tests): where the server listens, who runs it.
for _key in ("BIND", "USER", "VIRTUALENV", "WORKING_DIRECTORY", "PROCESS_MANAGER"):
    if os.environ.get(f"DEPLOYKIT_{_key}"):
        DEPLOYKIT[_key] = os.environ[f"DEPLOYKIT_{_key}"]
