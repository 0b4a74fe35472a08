"""Kubernetes beyond ingress-nginx (issue 17 item 6): the Ingress class, and a Gateway API HTTPRoute.

Every manifest passes kubernetes-validate (the core objects) and, for the HTTPRoute, Gateway API's
own schema (tests/gatewayapi.py: kubernetes-validate knows no CRDs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.targets.kubernetes import Kubernetes, ingress_hosts
from tests.gatewayapi import validate_gateway_api
from tests.test_containers import case_plan

CASE = "uvicorn-redis-tls"
SPLIT = {"WSGI_SERVER": "gunicorn"}
NGINX_ANNOTATION = "nginx.ingress.kubernetes.io/"


def manifests(tmp_path: Path, **extra: Any) -> tuple[str, dict[str, list[dict[str, Any]]], Any]:
    """The rendered YAML (checked by kubernetes-validate), its documents by kind, and the plan."""
    with override_settings(WSGI_APPLICATION="testproject.wsgi.application"), case_plan(CASE, **extra) as plan:
        target = Kubernetes(plan)
        text = target.render()
    target.require_tool()
    target.validate(text, tmp_path)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all(text):
        kinds.setdefault(doc["kind"], []).append(doc)
    return text, kinds, plan


def admitted_namespace(kinds: dict[str, list[dict[str, Any]]]) -> str:
    [policy] = kinds["NetworkPolicy"]
    [source] = policy["spec"]["ingress"][0]["from"]
    return str(source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])


def test_default_stays_an_ingress_nginx_ingress(tmp_path: Path) -> None:
    text, kinds, _ = manifests(tmp_path)
    [ingress] = kinds["Ingress"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert any(k.startswith(NGINX_ANNOTATION) for k in ingress["metadata"]["annotations"])
    assert "HTTPRoute" not in kinds
    assert admitted_namespace(kinds) == "ingress-nginx"
    assert validate_gateway_api(text) == 0


def test_another_ingress_class_gets_no_ingress_nginx_annotations(tmp_path: Path) -> None:
    text, kinds, _ = manifests(tmp_path, INGRESS_CLASS="traefik", INGRESS_NAMESPACE="traefik")
    [ingress] = kinds["Ingress"]
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert not any(k.startswith(NGINX_ANNOTATION) for k in ingress["metadata"].get("annotations") or {})
    assert admitted_namespace(kinds) == "traefik"
    # What that controller needs for WebSockets is said where the annotations would be.
    assert "idle" in text.split("kind: Ingress", 1)[1].split("spec:", 1)[0]


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        # The NetworkPolicy would admit ingress-nginx's pods, not the controller's: the app unreachable.
        ({"INGRESS_CLASS": "traefik"}, 'DEPLOYKIT["INGRESS_NAMESPACE"]'),
        ({"GATEWAY": "infra/public"}, 'DEPLOYKIT["INGRESS_NAMESPACE"]'),
        # Only ingress-nginx's canary can send the handshake to the WebSocket Service.
        ({**SPLIT, "INGRESS_CLASS": "traefik", "INGRESS_NAMESPACE": "traefik"}, 'DEPLOYKIT["INGRESS_CLASS"]'),
        ({"INGRESS_CLASS": "Not A Class", "INGRESS_NAMESPACE": "x"}, 'DEPLOYKIT["INGRESS_CLASS"]'),
        ({"GATEWAY": "a/b/c", "INGRESS_NAMESPACE": "x"}, 'DEPLOYKIT["GATEWAY"]'),
        ({"GATEWAY": "Public Gateway", "INGRESS_NAMESPACE": "x"}, 'DEPLOYKIT["GATEWAY"]'),
    ],
)
def test_refused_where_the_cluster_would_not_route(extra: dict[str, Any], setting: str) -> None:
    with pytest.raises(SpecError) as caught, case_plan(CASE, **extra):
        pass
    assert caught.value.setting == setting


def route_of(kinds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    [route] = kinds["HTTPRoute"]
    return route


def test_gateway_writes_an_httproute_instead_of_the_ingress(tmp_path: Path) -> None:
    text, kinds, plan = manifests(tmp_path, GATEWAY="infra/public", INGRESS_NAMESPACE="infra")
    assert validate_gateway_api(text) == 1
    assert "Ingress" not in kinds
    assert admitted_namespace(kinds) == "infra"
    route = route_of(kinds)
    spec = route["spec"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == plan.container.namespace
    assert spec["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra", "name": "public"}
    ]
    assert spec["hostnames"] == ingress_hosts(plan) and "example.com" in spec["hostnames"]
    upgrade, rest = spec["rules"]
    # The handshake by its own header, never timed out (the WebSocket is the request); the rest untouched.
    assert upgrade["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "Upgrade", "value": "websocket"}],
        }
    ]
    assert upgrade["timeouts"] == {"request": "0s", "backendRequest": "0s"}
    assert rest["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert "timeouts" not in rest
    service = plan.container.name
    for rule in (upgrade, rest):
        assert rule["backendRefs"] == [{"name": service, "port": 80}]
        # The schema does not refuse unknown fields: the keys are the spec's.
        assert set(rule) <= {"matches", "timeouts", "backendRefs"}


def test_split_serving_routes_the_handshake_to_the_websocket_service(tmp_path: Path) -> None:
    text, kinds, plan = manifests(tmp_path, **SPLIT, GATEWAY="public", INGRESS_NAMESPACE="gateways")
    assert validate_gateway_api(text) == 1
    spec = route_of(kinds)["spec"]
    # A Gateway in the app's own namespace: no namespace in the reference.
    assert spec["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}]
    upgrade, rest = spec["rules"]
    assert upgrade["backendRefs"] == [{"name": f"{plan.container.name}-websocket", "port": 80}]
    assert rest["backendRefs"] == [{"name": f"{plan.container.name}-http", "port": 80}]
    assert {d["metadata"]["name"] for d in kinds["Service"]} == {
        f"{plan.container.name}-websocket",
        f"{plan.container.name}-http",
    }


def test_gateway_and_an_ingress_together_while_moving(tmp_path: Path) -> None:
    text, kinds, _ = manifests(tmp_path, GATEWAY="infra/public", INGRESS_CLASS="nginx", INGRESS_NAMESPACE="infra")
    assert validate_gateway_api(text) == 1
    assert [i["spec"]["ingressClassName"] for i in kinds["Ingress"]] == ["nginx"]


def test_sub_path_and_no_host_names(tmp_path: Path) -> None:
    text, kinds, _ = manifests(
        tmp_path, GATEWAY="infra/public", INGRESS_NAMESPACE="infra", ROOT_PATH="/chat", SERVER_NAMES=["10.0.0.9"]
    )
    assert validate_gateway_api(text) == 1
    spec = route_of(kinds)["spec"]
    assert "hostnames" not in spec  # an IP address is no HTTPRoute hostname: every name of the listener
    assert [r["matches"][0]["path"] for r in spec["rules"]] == [{"type": "PathPrefix", "value": "/chat"}] * 2


def test_the_gateway_validator_refuses_a_wrong_route(tmp_path: Path) -> None:
    text, _, _ = manifests(tmp_path, GATEWAY="infra/public", INGRESS_NAMESPACE="infra")
    with pytest.raises(AssertionError, match="timeouts/request must match pattern"):
        validate_gateway_api(text.replace('request: "0s"', 'request: "forever"'))
    with pytest.raises(AssertionError, match="parentRefs/0 must have required property name"):
        validate_gateway_api(text.replace('      name: "public"\n', '      sectionName: "public"\n'))


def test_install_guide_names_the_entry() -> None:
    from deploykit.targets import TARGETS
    from deploykit.targets.bundle import install_guide

    with case_plan(CASE, GATEWAY="infra/public", INGRESS_NAMESPACE="infra") as plan:
        guide = install_guide(plan, [t for t in (T(plan) for T in TARGETS.values()) if t.applies()]).content
    assert (
        "A cluster (the Gateway infra/public admitting routes from example-prod, its pods in namespace infra;" in guide
    )
