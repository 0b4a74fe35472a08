"""The metrics section (issue 17 item 7): off unless DEPLOYKIT["METRICS_PATH"] is set."""

from __future__ import annotations

from deploykit import validators as v
from deploykit.plan.app import endpoint_path
from deploykit.plan.model import Metrics, ProcessManager, Server, WsgiServer
from deploykit.plan.reader import Reader

#: Inside the image the root filesystem is read-only; /tmp is its writable volume (emptyDir, tmpfs).
CONTAINER_DIRECTORY = "/tmp/deploykit-metrics"


def build_metrics(
    r: Reader,
    pm: ProcessManager,
    server: Server,
    wsgi: WsgiServer | None,
    notes: list[str],
    *,
    directory: str | None = None,
) -> Metrics | None:
    path = r.get("METRICS_PATH")
    if path is None:
        return None
    path = endpoint_path(path, r.label("METRICS_PATH"))
    granian_port: int | None = None
    if server.backend == "granian":
        port = v.port(r.get("GRANIAN_METRICS_PORT"), r.label("GRANIAN_METRICS_PORT"))
        if server.processes == 1:
            granian_port = port
        else:
            # One exporter per granian process, and they would all bind the one port.
            notes.append(
                f"metrics: granian's own exporter is not passed through with PROCESSES {server.processes} "
                "(one loopback port); deploykit's counters are"
            )
    return Metrics(
        path=path,
        directory=pm.runtime_directory.rstrip("/") + "/metrics" if directory is None else directory,
        wsgi_directory=None if wsgi is None else wsgi.runtime_directory.rstrip("/") + "/metrics",
        granian_port=granian_port,
        prometheus_namespace=v.dns_label(r.get("PROMETHEUS_NAMESPACE"), r.label("PROMETHEUS_NAMESPACE")),
    )
