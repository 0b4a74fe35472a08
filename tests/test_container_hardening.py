"""Issue 14, items 12 to 14: what the container files let out (secrets in the build context and the
ConfigMap) and what the stack lets in (host keys, capabilities, other pods)."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from deploykit.targets.docker import Dockerfile
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
