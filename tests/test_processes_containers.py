"""Issue 17 in the containers: Compose runs the release once before the app and the background processes;
Kubernetes runs it as the app pods' init container, a Deployment per process and a CronJob per timer.
Each file passes its real validator (docker-compose config, kubernetes-validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import override_settings

from deploykit.plan import Plan, build_plan
from deploykit.processes import argv
from deploykit.targets.compose import Compose
from deploykit.targets.kubernetes import Kubernetes

LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://redis:6379/0"]}}}
PROCESSES = {
    "celery": {"kind": "celery-worker", "app": "config.celery_app", "replicas": 3},
    "beat": {"kind": "celery-beat", "app": "config.celery_app"},
    "thumbnails": {"kind": "runworker", "channels": ["thumbnails"]},
}
TIMERS = {"clearsessions": {"command": "clearsessions", "schedule": "30 3 * * *"}}


def plan(**extra: Any) -> Plan:
    from tests import settings

    values = {
        **settings.DEPLOYKIT,
        "HEALTH_PATH": "/-/ready",
        "IMAGE_TAG": "1.4.2",
        "CONTAINERS": True,
        "BACKGROUND_PROCESSES": PROCESSES,
        "TIMERS": TIMERS,
        **extra,
    }
    with override_settings(DEPLOYKIT=values, CHANNEL_LAYERS=LAYER, STATIC_ROOT="/srv/example/app/static"):
        return build_plan()


@pytest.mark.parametrize("split", [False, True])
def test_compose_runs_the_release_before_the_app_and_the_processes(split: bool, tmp_path: Path) -> None:
    p = plan(**({"WSGI_SERVER": "gunicorn"} if split else {}))
    target = Compose(p)
    content = target.render()
    target.validate(content, tmp_path)  # docker-compose config
    services = yaml.safe_load(content)["services"]
    inside = p.in_container()
    release = services["example-release"]
    # The image collected the static files at build time: the release only migrates.
    assert release["command"] == argv(inside, inside.processes.release_process)
    assert release["command"][-2:] == ["--step", "migrate --noinput"]
    assert release["restart"] == "no"
    apps = ["http", "websocket"] if split else ["app"]
    for name in [*apps, *(b.unit for b in inside.processes.background)]:
        assert services[name]["depends_on"]["example-release"] == {"condition": "service_completed_successfully"}
    worker, beat, runworker = (services[b.unit] for b in inside.processes.background)
    assert worker["command"] == argv(inside, inside.processes.background[0])
    assert worker["stop_signal"] == "SIGTERM" and worker["stop_grace_period"] == "300s"
    assert worker["deploy"]["replicas"] == 3 and beat["deploy"]["replicas"] == 1
    assert runworker["stop_signal"] == "SIGINT"
    assert worker["healthcheck"] == {"disable": True}
    # The same environment as the app, the same image.
    assert worker["image"] == services[apps[0]]["image"] and worker["env_file"] == services[apps[0]]["env_file"]
    assert "docker compose run --rm" in content and "clearsessions" in content


@pytest.mark.parametrize("split", [False, True])
def test_kubernetes_init_container_deployments_and_cronjobs(split: bool, tmp_path: Path) -> None:
    p = plan(**({"WSGI_SERVER": "gunicorn"} if split else {}))
    target = Kubernetes(p)
    content = target.render()
    target.validate(content, tmp_path)  # kubernetes-validate --strict
    docs = [d for d in yaml.safe_load_all(content) if d]
    inside = p.in_container()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    apps = ["example-http", "example-websocket"] if split else ["example"]
    for name in apps:
        [init] = deployments[name]["spec"]["template"]["spec"]["initContainers"]
        assert init["command"] == argv(inside, inside.processes.release_process)
    worker, beat, runworker = (deployments[b.unit] for b in inside.processes.background)
    assert worker["spec"]["replicas"] == 3
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 300
    assert "lifecycle" in runworker["spec"]["template"]["spec"]["containers"][0]
    # No app selector picks up a worker's pods (the Service would send it HTTP requests).
    for d in docs:
        if d["kind"] in ("Service", "Deployment") and d["metadata"]["name"] in apps:
            selector = d["spec"]["selector"].get("matchLabels", d["spec"]["selector"])
            for b in deployments.values():
                if b["metadata"]["name"] not in apps:
                    pod = b["spec"]["template"]["metadata"]["labels"]
                    assert not all(pod.get(k) == val for k, val in selector.items())
    [cron] = [d for d in docs if d["kind"] == "CronJob"]
    assert cron["spec"]["schedule"] == "30 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"


def test_no_release_no_init_container(tmp_path: Path) -> None:
    p = plan(RELEASE_COMMANDS=[], BACKGROUND_PROCESSES={}, TIMERS={})
    assert "initContainers" not in Kubernetes(p).render()
    assert "service_completed_successfully" in Compose(p).render()  # collectstatic's, for nginx only
    assert "example-release" not in Compose(p).render()


def test_checkov_passes_the_process_manifests(tmp_path: Path) -> None:
    from tests.test_scanners import checkov

    path = tmp_path / "kubernetes.yaml"
    path.write_text(Kubernetes(plan(WSGI_SERVER="gunicorn")).render())
    report = checkov("kubernetes", path)
    assert report["summary"]["parsing_errors"] == 0
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in report["results"].get("failed_checks", [])
    ]
    assert not failed, "; ".join(failed)
    resources = {c["resource"] for c in report["results"]["passed_checks"]}
    assert any("CronJob" in r for r in resources) and any("example-celery" in r for r in resources)
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped["check_id"]
