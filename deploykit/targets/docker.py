"""The container image: a multi-stage Dockerfile and its .dockerignore.

The image runs the plan's server with the plan's argv: the plan carries the
server as it runs inside the image (``plan.container.server``, built by the
same code as the host's, with the image's virtualenv, working directory and a
TCP bind), so the ``CMD`` comes from the backend like systemd's ``ExecStart=``.
"""

from __future__ import annotations

from pathlib import Path

from deploykit.exceptions import SpecError
from deploykit.plan import CONTAINER_UID, CONTAINER_VIRTUALENV, CONTAINER_WORKDIR, Plan
from deploykit.rendering import render
from deploykit.servers import get_backend
from deploykit.targets.base import RenderedFile, Target
from deploykit.targets.env import contract_environment
from deploykit.targets.tooling import run_tool

#: Where the build stage moves the collected static files, so the final stage
#: copies them once, owned by the app user (Compose's collectstatic job
#: refreshes the static volume as that user).
COLLECTED_STATIC = "/tmp/collected-static"
#: Seconds: probes call the readiness endpoint, whose two parts have 2 s each
#: (deploykit.health.PART_TIMEOUT); the whole check then fits in this.
PROBE_TIMEOUT = 5
PROBE_INTERVAL = 10
#: Seconds the app may take to start (imports, first database connection)
#: before failed probes count.
START_PERIOD = 30


def container_plan(plan: Plan) -> Plan:
    """The plan as it runs inside the image (kept for the Compose target and the tests)."""
    return plan.in_container()


def health_path(plan: Plan) -> str:
    """The readiness path the HEALTHCHECK and the probes call; containers cannot do without one."""
    if plan.app.health_path is None:
        raise SpecError(
            'DEPLOYKIT["HEALTH_PATH"]',
            None,
            "the container targets need a readiness endpoint for HEALTHCHECK and probes: set it, e.g. '/-/ready'",
        )
    return plan.app.health_path


def readiness_command(plan: Plan) -> list[str]:
    """argv that exits 0 when the readiness endpoint answers 2xx (the slim image has no curl)."""
    url = f"http://127.0.0.1:{plan.container.port}{health_path(plan)}"
    # urlopen raises on any non-2xx status (the endpoint answers 503 when a part fails).
    code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout={PROBE_TIMEOUT - 1})"
    return [plan.container.process_manager.python, "-c", code]


class Dockerfile(Target):
    name = "dockerfile"
    description = "container image: multi-stage Dockerfile (non-root, collectstatic, HEALTHCHECK) + .dockerignore"
    template = "deploykit/docker/Dockerfile"
    file_name = "Dockerfile"
    tool = "hadolint"
    #: Fly builds this Dockerfile and runs its CMD (fly.toml names it).
    platforms = frozenset({"fly"})

    def context(self) -> dict[str, object]:
        inside = container_plan(self.plan)
        static_root = inside.site.static_root
        return {
            "plan": self.plan,
            "container": self.plan.container,
            # Only in the comments: the Dockerfile itself does not need the tag.
            "image_reference": f"{self.plan.container.image}:{self.plan.container.tag or 'TAG'}",
            "argv": get_backend(inside).argv(),
            "environment": contract_environment(inside),
            "healthcheck": readiness_command(self.plan),
            "health_path": health_path(self.plan),
            "venv": CONTAINER_VIRTUALENV,
            "workdir": CONTAINER_WORKDIR,
            "uid": CONTAINER_UID,
            "static_root": static_root,
            "collected_static": COLLECTED_STATIC,
            "media_root": inside.site.media_root,
            "probe_interval": PROBE_INTERVAL,
            "probe_timeout": PROBE_TIMEOUT,
            "start_period": START_PERIOD,
            "stop_timeout": self.plan.container.process_manager.stop_timeout,
            "ignored": self.ignored(),
        }

    def ignored(self) -> list[str]:
        """Project-relative directories the build context leaves out: collected static, uploads."""
        base = self.plan.app.base_dir.rstrip("/") + "/"
        return [
            path[len(base) :]
            for path in (self.plan.site.static_root, self.plan.site.media_root)
            if path is not None and path.startswith(base)
        ]

    def files(self) -> list[RenderedFile]:
        return [
            RenderedFile(self.filename, self.render()),
            RenderedFile(".dockerignore", render("deploykit/docker/dockerignore", self.context())),
        ]

    def applies(self) -> bool:
        return self.plan.container.enabled or self.plan.platform.kind in self.platforms

    def validate(self, content: str, workdir: Path) -> None:
        hadolint = self.require_tool()
        path = workdir / self.filename
        path.write_text(content, encoding="utf-8")
        run_tool([hadolint, "--no-color", str(path)])
