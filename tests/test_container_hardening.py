"""Issue 14, items 12 to 14: what the container files let out (secrets in the build context and the
ConfigMap) and what the stack lets in (host keys, capabilities, other pods)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import crossplane
import pytest
import yaml
from docker.utils.build import exclude_paths

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.targets.compose import RESOLVE_SINCE, Compose, nginx_image_version
from deploykit.targets.docker import Dockerfile
from deploykit.targets.kubernetes import Kubernetes
from deploykit.targets.nginx import Nginx
from tests.test_containers import case_plan

#: Secret files in layouts projects really use; none may reach the build context.
SECRET_FILES = (
    ".env",
    ".env.production",
    ".env.local",
    "production.env",
    "config/production.env",
    ".envs/.production/.django",  # cookiecutter-django
    ".envs/.production/.postgres",
    "config/.env",
    "config/.env.production",
    "deploy/env",  # `deployconfig all -o deploy/` (README): the systemd env file
    "deploy/INSTALL.md",
    "ops/deploy-2024/env",  # an `all` folder of another name still holds a file named env
    ".envrc",  # direnv
)
#: What the image needs: these stay in the context.
PROJECT_FILES = (
    "manage.py",
    "requirements.txt",
    "requirements/prod.txt",
    "example/settings.py",
    "example/environment.py",
    "example/envs.py",
    "example/templates/env.html",
    "static_src/app.js",
)


def build_context(root: Path, dockerignore: str) -> set[str]:
    """The files `docker build` sends, by docker-py's implementation of the .dockerignore rules."""
    for name in SECRET_FILES + PROJECT_FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (root / ".dockerignore").write_text(dockerignore)
    return {p for p in exclude_paths(str(root), dockerignore.splitlines()) if (root / p).is_file()}


@pytest.mark.parametrize("case", ["uvicorn-redis-tls", "daphne-sentinel-subpath"])
def test_dockerignore_keeps_secret_files_out_of_the_build_context(case: str, tmp_path: Path) -> None:
    with case_plan(case) as plan:
        (ignore,) = [f.content for f in Dockerfile(plan).files() if f.name == ".dockerignore"]
    sent = build_context(tmp_path, ignore)
    leaked = sorted(set(SECRET_FILES) & sent)
    assert not leaked, f"sent to the build: {leaked}"
    assert set(PROJECT_FILES) <= sent


# -- item 14: Compose -----------------------------------------------------------------------------

LIVE = "/etc/letsencrypt/live/example.com"


def compose_files(case: str, **extra: Any) -> tuple[dict[str, Any], str]:
    with case_plan(case, **extra) as plan:
        target = Compose(plan)
        return yaml.safe_load(target.render()), target.nginx_site()


def certbot_tree(root: Path) -> None:
    """/etc/letsencrypt as certbot leaves it: live/NAME/*.pem are links into ../../archive/NAME/."""
    for name in ("example.com", "other.org"):
        (root / "archive" / name).mkdir(parents=True)
        (root / "live" / name).mkdir(parents=True)
        for pem in ("fullchain", "privkey"):
            (root / "archive" / name / f"{pem}1.pem").write_text(f"{name} {pem}")
            (root / "live" / name / f"{pem}.pem").symlink_to(f"../../archive/{name}/{pem}1.pem")
    (root / "accounts").mkdir()
    (root / "accounts" / "private_key.json").write_text("account key")


def test_compose_mounts_only_the_sites_certificate_lineage(tmp_path: Path) -> None:
    compose, _site = compose_files("uvicorn-redis-tls")
    host = tmp_path / "host-letsencrypt"
    certbot_tree(host)
    # What the nginx container sees: only the bind mounts under /etc/letsencrypt, links kept as links.
    seen = tmp_path / "container"
    for volume in compose["services"]["nginx"]["volumes"]:
        source, target, *_ = volume.split(":")
        if source == "/etc/letsencrypt" or source.startswith("/etc/letsencrypt/"):
            assert source == target
            relative = Path(source).relative_to("/etc/letsencrypt")
            shutil.copytree(host / relative, seen / relative, symlinks=True)
    assert (seen / "live/example.com/fullchain.pem").read_text() == "example.com fullchain"
    assert (seen / "live/example.com/privkey.pem").read_text() == "example.com privkey"
    inside = sorted(str(p.relative_to(seen)) for p in seen.rglob("*") if p.is_file())
    assert inside == [
        "archive/example.com/fullchain1.pem",
        "archive/example.com/privkey1.pem",
        "live/example.com/fullchain.pem",
        "live/example.com/privkey.pem",
    ]


def test_compose_certificates_outside_letsencrypt_mount_their_folder() -> None:
    compose, _site = compose_files(
        "uvicorn-redis-tls", TLS_CERTIFICATE="/etc/ssl/acme/cert.pem", TLS_CERTIFICATE_KEY="/etc/ssl/private/key.pem"
    )
    mounts = [v for v in compose["services"]["nginx"]["volumes"] if v.startswith("/etc/")]
    assert mounts == ["/etc/ssl/acme:/etc/ssl/acme:ro", "/etc/ssl/private:/etc/ssl/private:ro"]


@pytest.mark.parametrize("case", ["uvicorn-redis-tls", "daphne-sentinel-subpath"])
def test_every_compose_service_drops_capabilities_and_privilege_escalation(case: str) -> None:
    compose, _site = compose_files(case)
    assert set(compose["services"]) >= {"app", "redis", "nginx"}
    for name, service in compose["services"].items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
    # What each one gets back, and why, is in the file; the app and the job need nothing.
    assert "cap_add" not in compose["services"]["app"]
    assert compose["services"]["redis"].get("user") == "redis"


def nginx_directives(text: str, tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "site.conf"
    path.write_text(text)
    payload = crossplane.parse(str(path), single=True, comments=False, check_ctx=False)
    assert payload["status"] == "ok", payload["errors"]
    return list(payload["config"][0]["parsed"])


@pytest.mark.parametrize("case", ["uvicorn-redis-tls", "daphne-sentinel-subpath"])
def test_compose_nginx_re_resolves_the_app_service(case: str, tmp_path: Path) -> None:
    """A replica added by `--scale` is picked up: Docker's DNS is asked again, not once at start."""
    with case_plan(case) as plan:
        site = Compose(plan).nginx_site()
        port = plan.container.port
    (upstream,) = [d for d in nginx_directives(site, tmp_path) if d["directive"] == "upstream"]
    block = {d["directive"]: d["args"] for d in upstream["block"]}
    assert block["server"] == [f"app:{port}", "resolve"]
    assert block["resolver"][0] == "127.0.0.11"  # Docker's embedded DNS
    assert "zone" in block  # `resolve` keeps the addresses in shared memory
    # The image must be one whose open-source nginx has `resolve` (1.27.3 and later).
    assert nginx_image_version() >= RESOLVE_SINCE == (1, 27, 3)


def test_host_nginx_keeps_a_static_upstream(tmp_path: Path) -> None:
    """Debian 12's nginx (1.22) has no `resolve`: the host's site does not use it."""
    with case_plan("uvicorn-redis-tls") as plan:
        site = Nginx(plan).render()
    (upstream,) = [d for d in nginx_directives(site, tmp_path) if d["directive"] == "upstream"]
    assert {d["directive"] for d in upstream["block"]} == {"server", "keepalive"}


# -- item 14: Kubernetes --------------------------------------------------------------------------


def kubernetes_docs(case: str, **extra: Any) -> dict[str, dict[str, Any]]:
    with case_plan(case, **extra) as plan:
        return {d["kind"]: d for d in yaml.safe_load_all(Kubernetes(plan).render())}


@pytest.mark.parametrize(("extra", "namespace"), [({}, "ingress-nginx"), ({"INGRESS_NAMESPACE": "edge"}, "edge")])
def test_a_network_policy_admits_only_the_ingress_controller(extra: dict[str, Any], namespace: str) -> None:
    docs = kubernetes_docs("daphne-sentinel-subpath", **extra)
    policy = docs["NetworkPolicy"]
    deployment = docs["Deployment"]
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert policy["spec"]["podSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9000}]


def test_the_ingress_namespace_is_validated() -> None:
    with pytest.raises(SpecError, match=r'DEPLOYKIT\["INGRESS_NAMESPACE"\]'):
        kubernetes_docs("uvicorn-redis-tls", INGRESS_NAMESPACE="Not A Namespace")


def test_containers_need_an_image_tag() -> None:
    with pytest.raises(SpecError, match=r'DEPLOYKIT\["IMAGE_TAG"\]'):
        build_plan({"CONTAINERS": True, "HEALTH_PATH": "/-/ready"})
    plan = build_plan({"HEALTH_PATH": "/-/ready"})
    for target in (Compose(plan), Kubernetes(plan)):
        with pytest.raises(SpecError, match=r'DEPLOYKIT\["IMAGE_TAG"\]'):
            target.render()


def test_kubernetes_refuses_the_latest_tag() -> None:
    with pytest.raises(SpecError, match=r'DEPLOYKIT\["IMAGE_TAG"\] = .latest.'):
        kubernetes_docs("uvicorn-redis-tls", IMAGE_TAG="latest")


# -- item 12: a ?password= query argument ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://redis.example:6379/0?password=s3cret",
        "redis://redis.example:6379/0?db=0&Password=s3cret",
        "rediss://redis.example:6380?password=s3cret&ssl_cert_reqs=required",
    ],
)
def test_a_redis_password_query_argument_stays_out_of_the_configmap(url: str) -> None:
    with case_plan("uvicorn-redis-tls", REDIS_URL=url) as plan:
        text = Kubernetes(plan).render()
    assert "s3cret" not in text
    assert "# WARNING: REDIS_URL has a password" in text
    assert "REDIS_URL" not in yaml.safe_load_all(text).__next__()["data"]
