"""Split serving (issue 15) in Compose: an http and a websocket service, nginx choosing by the handshake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import override_settings

from deploykit.plan import Plan, build_plan
from deploykit.plan.container import CONTAINER_TRUSTED_PROXIES
from deploykit.targets.compose import NGINX_FILENAME, Compose
from tests import settings as test_settings

OVERRIDES = {"HEALTH_PATH": "/-/ready", "CONTAINERS": True, "IMAGE_TAG": "1.0", "SERVER": "uvicorn"}


def plan_for(wsgi: str, **extra: Any) -> Plan:
    deploykit = {**test_settings.DEPLOYKIT, "WSGI_SERVER": wsgi}
    with override_settings(DEPLOYKIT=deploykit, WSGI_APPLICATION="testproject.wsgi.application"):
        return build_plan({**OVERRIDES, **extra})


def compose_files(plan: Plan) -> tuple[dict[str, Any], str]:
    files = {f.name: f.content for f in Compose(plan).files()}
    return yaml.safe_load(files["docker-compose.yml"]), files[NGINX_FILENAME]


def test_the_container_plan_has_a_wsgi_server_on_the_container_port() -> None:
    plan = plan_for("gunicorn")
    wsgi = plan.container.wsgi
    assert wsgi is not None and str(wsgi.address) == f"0.0.0.0:{plan.container.port}"
    assert wsgi.forwarded_allow_ips == CONTAINER_TRUSTED_PROXIES
    assert wsgi.workers == 1  # scale with replicas, like the ASGI side in the image


@pytest.mark.parametrize("wsgi", ["granian", "gunicorn"])
def test_compose_writes_an_http_and_a_websocket_service(wsgi: str) -> None:
    stack, nginx = compose_files(plan_for(wsgi))
    services = stack["services"]
    assert "app" not in services
    http, websocket = services["http"], services["websocket"]
    # The image's CMD is the ASGI server; the http service runs the WSGI server from the same image.
    assert "command" not in websocket
    assert http["command"][1:3] == ["-m", wsgi] and "deploykit.wsgiproxy:application" in http["command"]
    assert http["environment"]["DEPLOYKIT_SERVER_APP"] == "testproject.wsgi.application"
    assert http["image"] == websocket["image"]
    # Each restartable alone, each probed (the WSGI side answers HEALTH_PATH too).
    for service in (http, websocket):
        assert service["restart"] == "unless-stopped" and service["healthcheck"]["test"][0] == "CMD"
    assert set(services["nginx"]["depends_on"]) >= {"http", "websocket"}
    # nginx: both services by name, re-resolved, chosen by the handshake.
    assert "map $http_upgrade $example_upstream" in nginx
    assert "server http:8000 resolve;" in nginx and "server websocket:8000 resolve;" in nginx


def test_compose_with_the_split_passes_docker_compose_config(tmp_path: Path) -> None:
    target = Compose(plan_for("granian"))
    target.require_tool()
    target.validate(target.render(), tmp_path)


def test_install_md_scales_both_services() -> None:
    from deploykit.targets import bundle

    plan = plan_for("gunicorn")
    install = next(f.content for f in bundle.files(plan) if f.name == "INSTALL.md")
    n = plan.container.replicas
    assert f"--scale http={n} --scale websocket={n}" in install and "--scale app=" not in install


def manifests(plan: Plan) -> list[dict[str, Any]]:
    from deploykit.targets.kubernetes import Kubernetes

    return [doc for doc in yaml.safe_load_all(Kubernetes(plan).render()) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


@pytest.mark.parametrize("wsgi", ["granian", "gunicorn"])
def test_kubernetes_writes_two_deployments_and_services(wsgi: str) -> None:
    docs = manifests(plan_for(wsgi))
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    assert set(deployments) == set(services) == {"example-http", "example-websocket"}
    for name, deployment in deployments.items():
        component = name.rsplit("-", 1)[1]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == component
        assert services[name]["spec"]["selector"] == selector
        [pod] = deployment["spec"]["template"]["spec"]["containers"]
        # Probes on each: the WSGI side answers HEALTH_PATH too.
        assert pod["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    [http] = deployments["example-http"]["spec"]["template"]["spec"]["containers"]
    [websocket] = deployments["example-websocket"]["spec"]["template"]["spec"]["containers"]
    assert "command" not in websocket and http["command"][1:3] == ["-m", wsgi]
    assert {"name": "DEPLOYKIT_SERVER_APP", "value": "testproject.wsgi.application"} in http["env"]
    # One NetworkPolicy covers both: it selects the app's pods, whichever component.
    [policy] = by_kind(docs, "NetworkPolicy").values()
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "example"}
    assert set(by_kind(docs, "PodDisruptionBudget")) == set(by_kind(docs, "HorizontalPodAutoscaler")) == set(services)


def test_the_ingress_routes_upgrades_to_the_websocket_service() -> None:
    ingresses = by_kind(manifests(plan_for("gunicorn")), "Ingress")
    main, canary = ingresses["example"], ingresses["example-websocket"]

    def backends(ingress: dict[str, Any]) -> set[str]:
        return {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}

    assert backends(main) == {"example-http"} and backends(canary) == {"example-websocket"}
    annotations = canary["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-by-header"] == "Upgrade"
    assert annotations["nginx.ingress.kubernetes.io/canary-by-header-value"] == "websocket"


def test_kubernetes_with_the_split_passes_kubernetes_validate(tmp_path: Path) -> None:
    from deploykit.targets.kubernetes import Kubernetes

    target = Kubernetes(plan_for("granian"))
    target.require_tool()
    target.validate(target.render(), tmp_path)


@pytest.mark.parametrize("wsgi", ["granian", "gunicorn"])
def test_each_pod_drains_into_its_writable_tmp(wsgi: str) -> None:
    # The root filesystem is read-only: both sides' drain files must be in the /tmp emptyDir (issue 16).
    docs = manifests(plan_for(wsgi))
    [config] = by_kind(docs, "ConfigMap").values()
    for name, deployment in by_kind(docs, "Deployment").items():
        [pod] = deployment["spec"]["template"]["spec"]["containers"]
        env = {**config["data"], **{e["name"]: e["value"] for e in pod.get("env", [])}}
        assert env["DEPLOYKIT_SERVER_DRAIN_FILE"].startswith("/tmp/"), name
        assert [m["mountPath"] for m in pod["volumeMounts"]] == ["/tmp"]
        assert pod["lifecycle"]["preStop"]["exec"]["command"][1:5] == ["-m", "deploykit.drain", "start", "--wait"]
