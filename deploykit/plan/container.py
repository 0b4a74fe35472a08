"""The container section: the image, the cluster, and the plan as it runs inside the image."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan.cluster import build_cluster_entry
from deploykit.plan.model import (
    CONTAINER_RUNTIME_DIRECTORY,
    CONTAINER_VIRTUALENV,
    CONTAINER_WORKDIR,
    IMAGE_TAG_REQUIRED,
    App,
    ChannelLayer,
    Container,
    Site,
    WsgiServer,
)
from deploykit.plan.process import build_process_manager
from deploykit.plan.processes import build_processes
from deploykit.plan.reader import Reader
from deploykit.plan.server import build_server, drain_file
from deploykit.plan.site import build_site
from deploykit.plan.wsgi import build_wsgi

#: Whom the server in the image trusts for X-Forwarded-*: the private networks
#: the proxy container (Compose) or the ingress controller (Kubernetes) reach
#: it from, not ``*``: a published port or a pod network then cannot forge the
#: client address from a public one. FORWARDED_ALLOW_IPS narrows it.
CONTAINER_TRUSTED_PROXIES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")


def in_image(app: App, path: str | None) -> str | None:
    """Where a host path under the project is in the image (the project is copied to the workdir)."""
    if path is None:
        return None
    base = app.base_dir.rstrip("/")
    if path == app.base_dir or path.startswith(base + "/"):
        return CONTAINER_WORKDIR + path[len(base) :]
    return path


def build_container(r: Reader, app: App, layer: ChannelLayer) -> Container:
    enabled = v.boolean(r.get("CONTAINERS"), r.label("CONTAINERS"))
    if enabled and app.health_path is None:
        raise SpecError(
            r.label("HEALTH_PATH"), None, "containers need a readiness endpoint for HEALTHCHECK and probes: set it"
        )
    name = v.dns_label(app.name.replace("_", "-").strip("-"), 'DEPLOYKIT["NAME"] (as a Kubernetes name)')
    image = r.get("IMAGE")
    image = v.image_name(name if image is None else image, r.label("IMAGE"))
    namespace = r.get("NAMESPACE")
    namespace = v.dns_label(name if namespace is None else namespace, r.label("NAMESPACE"))
    tag = r.get("IMAGE_TAG")
    if tag is None and enabled:
        raise SpecError(r.label("IMAGE_TAG"), None, IMAGE_TAG_REQUIRED)
    requirements = r.get("REQUIREMENTS")
    if isinstance(requirements, str) or not isinstance(requirements, (list, tuple)) or not requirements:
        raise SpecError(r.label("REQUIREMENTS"), requirements, "must be a list of requirement files")
    replicas = v.integer(r.get("REPLICAS"), r.label("REPLICAS"), minimum=1, maximum=1000)
    max_replicas = r.get("MAX_REPLICAS")
    port = v.port(r.get("CONTAINER_PORT"), r.label("CONTAINER_PORT"))

    def optional_quantity(key: str) -> str | None:
        value = r.get(key)
        return None if value is None else v.quantity(value, r.label(key))

    # The same server, as it runs in the image: one process on a TCP port that
    # the proxy container, Service or Ingress reaches over the container network.
    inside: dict[str, Any] = {
        "BIND": f"0.0.0.0:{port}",
        "PROCESSES": 1,
        "PROCESS_MANAGER": "systemd",
        "VIRTUALENV": CONTAINER_VIRTUALENV,
        "WORKING_DIRECTORY": CONTAINER_WORKDIR,
        # The drain file's folder: the only writable one in the image.
        "RUNTIME_DIRECTORY": CONTAINER_RUNTIME_DIRECTORY,
    }
    if r.get("WORKERS") is None:
        # Scale with replicas: os.cpu_count() here is not the pod's CPU limit.
        inside["WORKERS"] = 1
    if r.get("FORWARDED_ALLOW_IPS") is None:
        inside["FORWARDED_ALLOW_IPS"] = CONTAINER_TRUSTED_PROXIES
    if r.get("WSGI_SERVER") is not None:
        # Split serving: the WSGI server is its own container (Compose service, Deployment), so it
        # listens on the same container port; one worker, scaled with replicas like the ASGI side.
        inside["WSGI_BIND"] = f"0.0.0.0:{port}"
        if r.get("WSGI_WORKERS") is None:
            inside["WSGI_WORKERS"] = 1
    inner = r.derive(inside, unset=("SOCKET", "FD"))
    inner_app = replace(app, base_dir=CONTAINER_WORKDIR)
    pm = build_process_manager(inner, inner_app)
    server = build_server(inner, inner_app, pm, layer, [])
    wsgi: WsgiServer | None = build_wsgi(inner, inner_app, pm, server, [])
    if wsgi is not None and wsgi.drain_file is not None:
        # Its own container, whose only writable place is /tmp too (not RUNTIME_DIRECTORY-http).
        wsgi = replace(wsgi, drain_file=drain_file(CONTAINER_RUNTIME_DIRECTORY, wsgi.name))
    site = build_site(r, server)
    processes = build_processes(inner, pm, layer, has_static=site.static_root is not None, in_image=True)
    return Container(
        enabled=enabled,
        name=name,
        image=image,
        tag=None if tag is None else v.image_tag(tag, r.label("IMAGE_TAG")),
        python_image=v.image_reference(r.get("PYTHON_IMAGE"), r.label("PYTHON_IMAGE")),
        requirements=tuple(v.relative_path(f, r.label("REQUIREMENTS")) for f in requirements),
        port=port,
        namespace=namespace,
        entry=build_cluster_entry(r, split=wsgi is not None),
        replicas=replicas,
        max_replicas=3 * replicas
        if max_replicas is None
        else v.integer(max_replicas, r.label("MAX_REPLICAS"), minimum=replicas, maximum=10000),
        cpu_request=v.quantity(r.get("CPU_REQUEST"), r.label("CPU_REQUEST")),
        cpu_limit=optional_quantity("CPU_LIMIT"),
        memory_request=v.quantity(r.get("MEMORY_REQUEST"), r.label("MEMORY_REQUEST")),
        memory_limit=optional_quantity("MEMORY_LIMIT"),
        server=server,
        wsgi=wsgi,
        processes=processes,
        process_manager=pm,
        site=_site_in_image(site, app),
        app=replace(inner_app, write_paths=tuple(p for w in app.write_paths if (p := in_image(app, w)))),
    )


def _site_in_image(site: Site, app: App) -> Site:
    return replace(site, static_root=in_image(app, site.static_root), media_root=in_image(app, site.media_root))
