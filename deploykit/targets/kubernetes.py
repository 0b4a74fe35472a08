"""Kubernetes: one multi-document YAML with everything the app needs in a cluster.

ConfigMap (non-secret environment, Redis by URL or Sentinel), a Deployment
running the image's server with probes on the readiness endpoint, Service,
NetworkPolicy (only the ingress controller reaches the pods), an Ingress (ingress-nginx's
annotations for class ``nginx``) and/or a Gateway API HTTPRoute (``plan.cluster``),
PodDisruptionBudget and HorizontalPodAutoscaler. Secrets are referenced, never written: the user
creates ``NAME-secrets`` from the env file. deploykit ships no Redis operator.

Split serving (issue 15): two Deployments and Services (NAME-http, NAME-websocket) and a canary Ingress
that sends WebSocket handshakes (``Upgrade: websocket``) to NAME-websocket: see :func:`workloads`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from deploykit import processes
from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan import CONTAINER_UID, Plan, is_ip
from deploykit.plan.process import DRAIN_WAIT_MARGIN
from deploykit.servers import get_backend
from deploykit.servers.wsgi import get_wsgi_backend
from deploykit.targets.base import Target
from deploykit.targets.docker import PROBE_INTERVAL, PROBE_TIMEOUT, START_PERIOD, health_path
from deploykit.targets.env import contract_environment
from deploykit.targets.processes import KIND_NAMES, STOP_REASONS
from deploykit.targets.tooling import run_tool

#: The Kubernetes version the manifests are checked against (kubernetes-validate
#: ships its schemas offline); a supported release at the time of writing,
#: https://kubernetes.io/releases/
KUBERNETES_VERSION = "1.33.0"
#: Seconds the pod keeps serving after it is marked terminating, while the
#: ingress controller and kube-proxy drop it from their endpoints
#: (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination).
PRESTOP_SLEEP = 5
#: The HorizontalPodAutoscaler's target: average CPU use over requests.
CPU_UTILIZATION = 70
SERVICE_PORT = 80


def ingress_hosts(plan: Plan) -> list[str]:
    """Server names as Ingress hosts: DNS names only, ``.example.com`` as ``*.example.com``."""
    hosts: list[str] = []
    for name in plan.site.server_names:
        if is_ip(name):
            continue  # an Ingress host cannot be an IP address
        name = name.rstrip(".")
        hosts.append(f"*{name}" if name.startswith(".") else name)
    return list(dict.fromkeys(hosts))


def redis_environment(plan: Plan) -> tuple[list[tuple[str, str]], list[str]]:
    """(ConfigMap entries for the channel layer, warnings written as comments)."""
    layer = plan.channel_layer
    warnings: list[str] = []
    entries: list[tuple[str, str]] = []
    if layer.kind == "sentinel":
        entries.append(("REDIS_SENTINELS", ",".join(f"{h}:{p}" for h, p in layer.sentinels)))
        entries.append(("REDIS_SENTINEL_MASTER", layer.master_name or "mymaster"))
        hosts = [h for h, _ in layer.sentinels]
    elif layer.redis_url is not None or (layer.kind in ("redis", "pubsub") and layer.hosts):
        # The cluster's Redis (--redis-url) wins: the settings read REDIS_URL into CHANNEL_LAYERS.
        url = layer.redis_url or layer.hosts[0]
        parts = urlsplit(url)
        # redis-py also reads the password from a ?password= query argument.
        if parts.password or any(k.lower() == "password" for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            warnings.append("REDIS_URL has a password: put it in the Secret, not in this ConfigMap")
        else:
            entries.append(("REDIS_URL", url))
        hosts = [parts.hostname or ""]
    else:
        warnings.append("no Redis channel layer: replicas cannot share groups; set REDIS_URL (--redis-url) or Sentinel")
        hosts = []
    if any(h in ("localhost", "127.0.0.1", "::1") for h in hosts):
        warnings.append("Redis on a loopback address is the pod itself: pass --redis-url with the cluster's host")
    return entries, warnings


def checkov_skips(plan: Plan) -> list[tuple[str, str]]:
    """checkov checks the Deployment deliberately fails, with the reason (written as checkov.io/skipN annotations)."""
    skips = [
        (
            "CKV_K8S_15",
            "the tag names one build (latest is refused), so IfNotPresent; Always ties every start to the registry",
        ),
        ("CKV_K8S_43", "the tag names one build; the digest exists only after the push"),
        ("CKV_K8S_35", "Django settings read secrets from the environment, as from the env file on a host"),
    ]
    if plan.container.cpu_limit is None:
        skips.append(
            ("CKV_K8S_11", "no CPU limit unless CPU_LIMIT: throttling delays WebSocket pings; requests reserve CPU")
        )
    return skips


def image_reference(plan: Plan) -> str:
    """The Deployment's image: a tag that names one build, never 'latest'."""
    c = plan.container
    if c.tag == "latest":
        raise SpecError(
            'DEPLOYKIT["IMAGE_TAG"]',
            c.tag,
            "a Deployment needs a tag that names one build (e.g. '1.4.2'): with 'latest' a push rolls nothing out "
            "and nodes that pulled at different times run different builds",
        )
    return c.reference


def prestop(drain: list[str] | None) -> dict[str, object]:
    """The preStop hook: the drain (which waits at least PRESTOP_SLEEP, failing readiness), else the sleep."""
    if drain is None:
        return {
            "command": ["sleep", str(PRESTOP_SLEEP)],
            "comment": "Keep serving while the ingress controller drops this pod, then SIGTERM.",
        }
    return {
        "command": drain,
        "comment": "Fail readiness, close the WebSockets at random times over DRAIN_TIMEOUT (new ones refused; "
        f"at least {PRESTOP_SLEEP}s, while the ingress controller drops this pod), then SIGTERM.",
    }


def workloads(plan: Plan, labels: list[tuple[str, str]]) -> list[dict[str, object]]:
    """One Deployment + Service (+ PDB, HPA) per server: one, or with split serving the WSGI server's
    (``NAME-http``, its argv as the container's command) and the ASGI server's (``NAME-websocket``, the
    image's CMD). A component label keeps their selectors apart; the NetworkPolicy selects both.
    """
    c = plan.container
    asgi_stop = prestop(get_backend(plan.in_container()).drain_argv(at_least=PRESTOP_SLEEP))
    if c.wsgi is None:
        return [{"name": c.name, "labels": labels, "command": None, "env": None, "serves": None, "prestop": asgi_stop}]
    backend = get_wsgi_backend(replace(plan.in_container(), wsgi=c.wsgi))

    def named(suffix: str) -> str:
        return v.dns_label(f"{c.name}-{suffix}", 'DEPLOYKIT["NAME"] (+ "-websocket", as a Kubernetes name)')

    component = "app.kubernetes.io/component"
    return [
        {
            "name": named("http"),
            "labels": [*labels, (component, "http")],
            "command": backend.argv(),
            "env": sorted(backend.environment().items()),
            "serves": "Split serving: HTTP, through the WSGI server.",
            "prestop": prestop(backend.drain_argv(at_least=PRESTOP_SLEEP)),
        },
        {
            "name": named("websocket"),
            "labels": [*labels, (component, "websocket")],
            "command": None,
            "env": None,
            "serves": "Split serving: WebSockets, through the ASGI server (the image's CMD).",
            "prestop": asgi_stop,
        },
    ]


#: checkov's findings that do not apply to pods that serve no HTTP (background processes, timers).
BACKGROUND_SKIPS = [
    ("CKV_K8S_8", "no HTTP port to probe: a worker's liveness is its process; Kubernetes restarts it when it exits"),
    ("CKV_K8S_9", "no HTTP port to probe: a worker takes work from its broker, not from a Service"),
]


def processes_context(plan: Plan, labels: list[tuple[str, str]]) -> dict[str, object]:
    """Issue 17: the release as an init container of the app's pods, a Deployment per background process,
    a CronJob per timer; their pods carry their own name label, so no app selector (Deployment, Service)
    ever picks them up."""
    inside = plan.in_container()
    c = plan.container
    p = inside.processes
    release = p.release_process

    def own(unit: str) -> tuple[str, list[tuple[str, str]]]:
        name = v.dns_label(
            unit.replace("_", "-"), 'DEPLOYKIT["BACKGROUND_PROCESSES"] (NAME-name, as a Kubernetes name)'
        )
        return name, [
            ("app.kubernetes.io/name", name),
            ("app.kubernetes.io/part-of", c.name),
            ("app.kubernetes.io/component", "background"),
        ]

    background = []
    for b in p.background:
        name, own_labels = own(b.unit)
        background.append(
            {
                "process": b,
                "name": name,
                "labels": own_labels,
                "command": processes.argv(inside, b),
                "what": f"{KIND_NAMES[b.kind]}.",
                "stop_why": STOP_REASONS[b.kind],
                "signal_command": [
                    inside.process_manager.python,
                    "-c",
                    f"import os, signal; os.kill(1, signal.SIG{b.stop_signal})",
                ],
                "skips": checkov_skips(plan) + BACKGROUND_SKIPS,
            }
        )
    timers = []
    for t in p.timers:
        name, own_labels = own(t.unit)
        timers.append(
            {
                "timer": t,
                "name": name,
                "labels": own_labels,
                "command": processes.argv(inside, t),
                "skips": checkov_skips(plan) + BACKGROUND_SKIPS,
            }
        )
    return {
        "release": None
        if release is None
        else {
            "command": processes.argv(inside, release),
            "steps": ", ".join(" ".join(s) for s in p.release),
        },
        "background": background,
        "timers": timers,
        "processes_policy": f"{c.name}-background",
    }


class Kubernetes(Target):
    name = "kubernetes"
    description = (
        "Kubernetes: Deployment, Service, Ingress and/or Gateway API HTTPRoute, ConfigMap, PDB, HPA in one YAML"
    )
    template = "deploykit/kubernetes/kubernetes.yaml"
    file_name = "kubernetes.yaml"
    tool = "kubernetes-validate"

    def context(self) -> dict[str, object]:
        plan = self.plan
        c = plan.container
        redis, warnings = redis_environment(plan)
        config = {"DJANGO_SETTINGS_MODULE": plan.app.settings_module, **dict(redis)}
        config.update(plan.process_manager.environment)
        config.update(contract_environment(plan.in_container()))
        # The pod gets the grace period for preStop (the drain's window and its margin, or the sleep), then the
        # server its graceful timeout, then the margin systemd and supervisor get too.
        drain = c.server.drain_timeout + DRAIN_WAIT_MARGIN if c.server.drain_file else 0
        grace = max(PRESTOP_SLEEP, drain) + c.process_manager.stop_timeout
        tls = plan.site.tls
        labels = [("app.kubernetes.io/name", c.name)]
        apps = workloads(plan, labels)
        return {
            "plan": plan,
            "container": c,
            "labels": labels,
            "workloads": apps,
            # The Ingress sends everything to the first; with the split a canary Ingress sends upgrades to the second.
            "ingress_service": apps[0]["name"],
            "websocket_service": apps[1]["name"] if len(apps) > 1 else None,
            "config": sorted(config.items()),
            "warnings": warnings,
            "secret_name": f"{c.name}-secrets",
            "config_name": f"{c.name}-env",
            "tls_secret": f"{c.name}-tls",
            "tls": tls is not None,
            "acme": tls is not None and tls.certificate is None,
            "health_path": health_path(plan),
            "image": image_reference(plan),
            "grace": grace,
            "prestop_seconds": max(PRESTOP_SLEEP, drain),
            "probe_interval": PROBE_INTERVAL,
            "probe_timeout": PROBE_TIMEOUT,
            "startup_failures": START_PERIOD // 5,
            "service_port": SERVICE_PORT,
            "ingress_class": c.entry.ingress_class,
            "ingress_nginx": c.entry.ingress_nginx,
            "gateway": c.entry.gateway,
            # The HTTPRoute's handshake rule: the WebSocket Service with split serving, else the one Service.
            "route_websocket": apps[-1]["name"],
            "hosts": ingress_hosts(plan),
            "path": plan.site.root_path or "/",
            "timeout": str(plan.site.proxy_read_timeout),
            "body_size": str(plan.site.max_body_size),
            "cpu_utilization": CPU_UTILIZATION,
            "kubernetes_version": KUBERNETES_VERSION,
            "uid": CONTAINER_UID,
            "ingress_namespace": c.ingress_namespace,
            "metrics": c.metrics,
            # The ASGI server answers METRICS_PATH: the image's CMD, the last workload.
            "scraped": apps[-1]["name"] if c.metrics is not None else None,
            "metrics_location": None if c.metrics is None else plan.site.root_path + c.metrics.path,
            "checkov_skips": checkov_skips(plan),
            **processes_context(plan, labels),
        }

    def applies(self) -> bool:
        return self.plan.container.enabled

    def validate(self, content: str, workdir: Path) -> None:
        validator = self.require_tool()
        path = workdir / self.filename
        path.write_text(content, encoding="utf-8")
        run_tool([validator, "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)])
