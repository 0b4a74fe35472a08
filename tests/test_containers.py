"""The dockerfile, compose and kubernetes targets: golden files, real validators, agreement with the plan.

Re-bless the golden files after an intended change:
    DEPLOYKIT_BLESS=1 .venv/bin/python -m pytest tests/test_containers.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import crossplane
import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan import CONTAINER_UID, REDIS_BACKEND, Plan, build_plan
from deploykit.plan.container import CONTAINER_TRUSTED_PROXIES
from deploykit.plan.process import DRAIN_WAIT_MARGIN
from deploykit.servers import get_backend
from deploykit.targets import TARGETS, bundle
from deploykit.targets.compose import NGINX_FILENAME, Compose
from deploykit.targets.docker import Dockerfile, container_plan, readiness_command
from deploykit.targets.kubernetes import PRESTOP_SLEEP, Kubernetes
from deploykit.targets.tooling import run_tool

GOLDEN = Path(__file__).parent / "golden" / "containers"
BLESS = os.environ.get("DEPLOYKIT_BLESS") == "1"
SERVERS = ("daphne", "uvicorn", "gunicorn", "granian", "hypercorn")
HOST_SOCKET = "/run/example/example.sock"

#: Two deployments that between them take every branch of the templates.
CASES: dict[str, dict[str, Any]] = {
    # uvicorn behind TLS certificates, Redis by URL, static files under the project.
    "uvicorn-redis-tls": {
        "settings": {"STATIC_ROOT": str(settings.BASE_DIR / "var" / "static")},
        "overrides": {
            "SERVER": "uvicorn",
            "SOCKET": HOST_SOCKET,
            "HEALTH_PATH": "/-/ready",
            "REDIS_URL": "redis://redis.example.svc.cluster.local:6379/0",
            "CONTAINERS": True,
            "IMAGE": "registry.example.com/acme/example",
            "IMAGE_TAG": "1.4.2",
            "NAMESPACE": "example-prod",
            "TLS_CERTIFICATE": "/etc/letsencrypt/live/example.com/fullchain.pem",
            "TLS_CERTIFICATE_KEY": "/etc/letsencrypt/live/example.com/privkey.pem",
        },
    },
    # daphne under a sub-path, Sentinel, ACME, sticky sessions, a '$' in the environment.
    "daphne-sentinel-subpath": {
        "settings": {
            "CHANNEL_LAYERS": {
                "default": {
                    "BACKEND": REDIS_BACKEND,
                    "CONFIG": {
                        "hosts": [
                            {
                                "sentinels": [("sentinel-0.redis", 26379), ("sentinel-1.redis", 26379)],
                                "master_name": "chat",
                            }
                        ]
                    },
                }
            }
        },
        "overrides": {
            "SERVER": "daphne",
            "SOCKET": HOST_SOCKET,
            "HEALTH_PATH": "/healthz",
            "ROOT_PATH": "/chat",
            "STICKY_SESSIONS": True,
            "ACME_WEBROOT": "/var/www/acme",
            "ENVIRONMENT": {"GREETING": 'costs $5, "quoted" ${HOME}'},
            "IMAGE_TAG": "git-3f2c1a9",
            "CONTAINER_PORT": 9000,
            "REPLICAS": 3,
            "MAX_REPLICAS": 5,
            "CPU_LIMIT": "1",
            "MEMORY_LIMIT": None,
            "REQUIREMENTS": ["requirements/base.txt", "requirements/prod.txt"],
        },
    },
}


@contextmanager
def case_plan(case: str, **extra: Any) -> Iterator[Plan]:
    """The case's plan, with its settings in force (rendering reads none, but keep them for nested calls)."""
    spec = CASES[case]
    with override_settings(**spec["settings"]):
        yield build_plan({**spec["overrides"], **extra})


def rendered(plan: Plan) -> dict[str, str]:
    """Every container file by name (what ``deployconfig all`` writes)."""
    return {f.name: f.content for t in (Dockerfile(plan), Compose(plan), Kubernetes(plan)) for f in t.files()}


# -- golden files -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_golden_files(case: str) -> None:
    with case_plan(case) as plan:
        files = rendered(plan)
    # nginx-compose.conf is the nginx target's file (its own goldens); checked below for its upstream.
    files.pop(NGINX_FILENAME)
    folder = GOLDEN / case
    if BLESS:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in folder.iterdir()} - set(files):
            (folder / stale).unlink()
        for name, content in files.items():
            (folder / name).write_text(content, encoding="utf-8")
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, content in files.items():
        assert content == (folder / name).read_text(encoding="utf-8"), f"{case}/{name} changed: DEPLOYKIT_BLESS=1"


# -- real validators ----------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_dockerfile_passes_hadolint_for_every_server(server: str, tmp_path: Path) -> None:
    with case_plan("uvicorn-redis-tls", SERVER=server) as plan:
        target = Dockerfile(plan)
        target.require_tool()
        target.validate(target.render(), tmp_path)


def test_hadolint_rejects_an_untagged_base_image(tmp_path: Path) -> None:
    """The validator can fail: the same Dockerfile on an untagged base image is refused."""
    with case_plan("uvicorn-redis-tls") as plan:
        target = Dockerfile(plan)
        hadolint = target.require_tool()
        bad = target.render().replace("FROM python:3.12-slim-bookworm\n", "FROM python\n")
    path = tmp_path / "Dockerfile"
    path.write_text(bad)
    with pytest.raises(Exception, match=r"DL3006|DL3007"):
        run_tool([hadolint, "--no-color", str(path)])


@pytest.mark.parametrize("case", CASES)
def test_compose_passes_docker_compose_config(case: str, tmp_path: Path) -> None:
    with case_plan(case) as plan:
        target = Compose(plan)
        compose = target.require_tool()
        target.validate(target.render(), tmp_path)
    # What Compose itself makes of the file: `$` survives interpolation, the scale is ours.
    out = yaml.safe_load(run_tool([compose, "-f", str(tmp_path / target.filename), "config"], cwd=tmp_path))
    app = out["services"]["app"]
    for name, value in plan.process_manager.environment:
        assert app["environment"][name].replace("$$", "$") == value
    assert app["stop_grace_period"] == f"{plan.container.process_manager.stop_timeout}s"


@pytest.mark.parametrize("case", CASES)
def test_kubernetes_manifests_validate(case: str, tmp_path: Path) -> None:
    with case_plan(case) as plan:
        target = Kubernetes(plan)
        target.require_tool()
        target.validate(target.render(), tmp_path)


def test_kubernetes_validate_rejects_a_wrong_manifest(tmp_path: Path) -> None:
    with case_plan("uvicorn-redis-tls") as plan:
        target = Kubernetes(plan)
        target.require_tool()
        bad = target.render().replace("runAsNonRoot: true", "runAsNonRoot: true\n        runAsRoot: false")
    with pytest.raises(Exception, match="runAsRoot"):
        target.validate(bad, tmp_path)


# -- the files agree with the plan and with each other ------------------------------------------


def dockerfile_instructions(text: str) -> dict[str, list[str]]:
    """Instruction -> its arguments, continuation lines joined, comments dropped."""
    out: dict[str, list[str]] = {}
    logical = ""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        logical += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, args = logical.strip().partition(" ")
            out.setdefault(keyword, []).append(args)
            logical = ""
    return out


@pytest.mark.parametrize("case", CASES)
def test_every_file_uses_the_plans_port_readiness_path_and_timeouts(case: str, tmp_path: Path) -> None:
    with case_plan(case) as plan:
        files = rendered(plan)
        # Derived independently: the same settings, the image's paths on the command line.
        overrides = {k: val for k, val in CASES[case]["overrides"].items() if k != "SOCKET"}
        independent = build_plan(
            {
                **overrides,
                "BIND": f"0.0.0.0:{plan.container.port}",
                "VIRTUALENV": "/opt/venv",
                "WORKING_DIRECTORY": "/app",
                "WORKERS": 1,
                "FORWARDED_ALLOW_IPS": CONTAINER_TRUSTED_PROXIES,
            }
        )
    c = plan.container
    port, path, graceful = c.port, plan.app.health_path, plan.server.graceful_timeout
    assert path is not None
    argv = get_backend(container_plan(plan)).argv()
    assert argv == get_backend(independent).argv()
    assert str(port) in argv and str(c.server.listen) == f"0.0.0.0:{port}"

    # Dockerfile: CMD, EXPOSE, HEALTHCHECK, USER.
    docker = dockerfile_instructions(files["Dockerfile"])
    assert json.loads(docker["CMD"][0]) == argv
    assert docker["EXPOSE"] == [str(port)]
    assert docker["STOPSIGNAL"] == ["SIGTERM"]
    assert docker["USER"] == [f"{CONTAINER_UID}:{CONTAINER_UID}"]
    _options, _, command = docker["HEALTHCHECK"][0].partition(" CMD ")
    health = json.loads(command)
    assert health == readiness_command(plan)
    assert f"'http://127.0.0.1:{port}{path}'" in health[-1]

    # Compose: the app's port and health check; nginx's upstream is the app service on that port.
    compose = yaml.safe_load(files["docker-compose.yml"])
    app = compose["services"]["app"]
    assert app["expose"] == [str(port)]
    assert app["deploy"]["replicas"] == c.replicas
    assert app["healthcheck"]["test"] == ["CMD", *health]
    assert int(app["stop_grace_period"].rstrip("s")) > graceful
    assert compose["services"]["nginx"]["depends_on"]["app"] == {"condition": "service_healthy"}
    # Re-resolved while nginx runs, so `--scale` is picked up (issue 14 item 14).
    assert nginx_upstream_servers(files[NGINX_FILENAME], tmp_path) == [f"app:{port} resolve"]

    # Kubernetes: container port, the three probes, grace period, Service -> Ingress.
    docs = {d["kind"]: d for d in yaml.safe_load_all(files["kubernetes.yaml"])}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == c.reference
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    # preStop drains (issue 16): the grace period covers the drain's window, then the graceful timeout.
    assert pod["terminationGracePeriodSeconds"] > c.server.drain_timeout + DRAIN_WAIT_MARGIN + graceful
    assert container["lifecycle"]["preStop"]["exec"]["command"] == [
        *("/opt/venv/bin/python", "-m", "deploykit.drain", "start", "--wait", "--at-least", str(PRESTOP_SLEEP))
    ]
    # The drain file is where the read-only pod can write: the emptyDir on /tmp (compose: its tmpfs).
    drain_file = docs["ConfigMap"]["data"]["DEPLOYKIT_SERVER_DRAIN_FILE"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    assert drain_file.startswith("/tmp/") and app["tmpfs"] == ["/tmp"] and app["read_only"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == CONTAINER_UID
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    annotations = docs["Ingress"]["metadata"]["annotations"]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) > plan.server.websocket_ping_interval
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    for rule in docs["Ingress"]["spec"]["rules"]:
        (http_path,) = rule["http"]["paths"]
        assert http_path["path"] == (plan.site.root_path or "/")
        assert http_path["backend"]["service"] == {
            "name": docs["Service"]["metadata"]["name"],
            "port": {"name": "http"},
        }
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == c.replicas
    assert docs["Deployment"]["metadata"]["namespace"] == c.namespace

    # The host's socket is the host's business: no container file mentions it.
    for name, content in files.items():
        assert HOST_SOCKET not in content, name


def nginx_upstream_servers(text: str, workdir: Path) -> list[str]:
    path = workdir / NGINX_FILENAME
    path.write_text(text)
    # A site file: its directives sit inside http{}, which it does not contain.
    payload = crossplane.parse(str(path), single=True, comments=False, check_ctx=False)
    assert payload["status"] == "ok", payload["errors"]
    for directive in payload["config"][0]["parsed"]:
        if directive["directive"] == "upstream":
            return [" ".join(d["args"]) for d in directive["block"] if d["directive"] == "server"]
    raise AssertionError("no upstream block")


def test_channel_layer_reaches_the_cluster_by_url_or_sentinel() -> None:
    with case_plan("uvicorn-redis-tls") as plan:
        docs = {d["kind"]: d for d in yaml.safe_load_all(Kubernetes(plan).render())}
    assert docs["ConfigMap"]["data"]["REDIS_URL"] == plan.channel_layer.redis_url
    with case_plan("daphne-sentinel-subpath") as plan:
        docs = {d["kind"]: d for d in yaml.safe_load_all(Kubernetes(plan).render())}
    data = docs["ConfigMap"]["data"]
    assert data["REDIS_SENTINELS"] == "sentinel-0.redis:26379,sentinel-1.redis:26379"
    assert data["REDIS_SENTINEL_MASTER"] == "chat"
    assert "REDIS_URL" not in data


def test_a_redis_password_stays_out_of_the_configmap() -> None:
    with case_plan("uvicorn-redis-tls", REDIS_URL="redis://:s3cret@redis.example:6379/0") as plan:
        text = Kubernetes(plan).render()
    assert "s3cret" not in text
    assert "# WARNING: REDIS_URL has a password" in text


# -- the plan's container part ------------------------------------------------------------------


def test_the_server_in_the_image_binds_tcp_with_the_images_paths() -> None:
    plan = build_plan(
        {"PROCESS_MANAGER": "supervisor", "SOCKET": HOST_SOCKET, "REDIS_URL": "redis://r:6379/0", "PROCESSES": 3}
    )
    inside = plan.container
    assert plan.server.listen.kind == "fd"
    assert str(inside.server.listen) == "0.0.0.0:8000" and inside.server.addresses == (inside.server.listen,)
    assert inside.process_manager.python == "/opt/venv/bin/python"
    assert inside.process_manager.working_directory == "/app"
    # Redis crosses processes: the host gets one worker per core, a container one (scale with replicas).
    assert inside.server.workers == 1
    # Trust the proxy container or ingress on the private networks, not every peer (issue 13).
    assert inside.server.forwarded_allow_ips == CONTAINER_TRUSTED_PROXIES and "*" not in CONTAINER_TRUSTED_PROXIES
    assert build_plan({"WORKERS": 3, "FORWARDED_ALLOW_IPS": "10.0.0.0/8"}).container.server.workers == 3
    assert build_plan({"FORWARDED_ALLOW_IPS": "10.0.0.0/8"}).container.server.forwarded_allow_ips == ("10.0.0.0/8",)


def test_containers_need_a_readiness_path() -> None:
    with pytest.raises(SpecError, match="HEALTH_PATH"):
        build_plan({"CONTAINERS": True})
    plan = build_plan()
    for target in (Dockerfile(plan), Compose(plan), Kubernetes(plan)):
        with pytest.raises(SpecError, match="HEALTH_PATH"):
            target.render()


def test_all_includes_the_container_files_when_the_plan_asks() -> None:
    assert {"dockerfile", "compose", "kubernetes"} <= set(TARGETS)
    plan = build_plan({"HEALTH_PATH": "/-/ready"})
    assert not any(TARGETS[name](plan).applies() for name in ("dockerfile", "compose", "kubernetes"))
    plan = build_plan({"HEALTH_PATH": "/-/ready", "CONTAINERS": True, "IMAGE_TAG": "1.0"})
    names = {f.name for f in bundle.files(plan)}
    assert {"Dockerfile", ".dockerignore", "docker-compose.yml", NGINX_FILENAME, "kubernetes.yaml"} <= names
    install = bundle.install_guide(plan, bundle.parts(plan)).content
    for line in (
        f"docker build -t example:1.0 {plan.app.base_dir}",
        "docker compose up -d --scale app=2",
        "kubectl -n example create secret generic example-secrets",
        "kubectl apply -f kubernetes.yaml",
    ):
        assert line in install


def test_options_reach_the_plan() -> None:
    args = ["--image", "ghcr.io/acme/chat", "--tag", "2.0", "--namespace", "chat", "--replicas", "4"]
    out = StringIO()
    with override_settings(DEPLOYKIT={**settings.DEPLOYKIT, "HEALTH_PATH": "/-/ready"}):
        call_command("deployconfig", "kubernetes", *args, stdout=out)
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.getvalue())}
    assert docs["Deployment"]["metadata"]["namespace"] == "chat"
    assert docs["Deployment"]["spec"]["replicas"] == 4
    assert docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/chat:2.0"
    with pytest.raises(Exception, match="--image"):
        call_command("deployconfig", "kubernetes", "--image", "Not An Image", stdout=StringIO())


@pytest.mark.parametrize(
    ("validator", "good", "bad"),
    [
        (v.image_name, ["app", "ghcr.io/acme/chat", "localhost:5000/a/b", "a_b/c-d"], ["App", "a:1", "-a", "a//b", ""]),
        (v.image_tag, ["latest", "1.4.2", "v1_rc-2"], ["-x", "a b", "x" * 129]),
        (v.image_reference, ["python:3.12-slim", f"python@sha256:{'a' * 64}"], ["python", "python:", "a@sha256:x"]),
        (v.dns_label, ["chat", "chat-prod"], ["Chat", "chat_prod", "-chat", "a" * 64]),
        (v.quantity, ["250m", "1", 2, "0.5", "512Mi"], ["1 G", "abc", "-1", True]),
        (v.relative_path, ["requirements.txt", "req/prod.txt"], ["/abs", "../x", "a/../b", "a b", "./a"]),
    ],
)
def test_container_validators(validator: Any, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        validator(value, "S")
    for value in bad:
        with pytest.raises(SpecError):
            validator(value, "S")
