"""How traffic enters the cluster: an Ingress of some class, a Gateway API HTTPRoute, or both.

Kept apart from :mod:`deploykit.plan.container` (the image): these settings only shape the
Kubernetes manifests, and each one can leave the app unreachable in a way no validator sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploykit import validators as v
from deploykit.exceptions import SpecError
from deploykit.plan.reader import Reader

#: ingress-nginx's IngressClass and install namespace: the defaults, and the only class whose
#: annotations deploykit writes (https://kubernetes.github.io/ingress-nginx/).
INGRESS_NGINX_CLASS = "nginx"
INGRESS_NGINX_NAMESPACE = "ingress-nginx"


@dataclass(frozen=True)
class GatewayRef:
    """The Gateway an HTTPRoute attaches to (parentRefs): its name, and its namespace when not the app's."""

    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class ClusterEntry:
    #: The Ingress's ingressClassName; None: no Ingress (the HTTPRoute alone).
    ingress_class: str | None
    gateway: GatewayRef | None
    #: The namespace whose pods (the controller's, or the Gateway's data plane) the NetworkPolicy admits.
    ingress_namespace: str

    @property
    def ingress_nginx(self) -> bool:
        return self.ingress_class == INGRESS_NGINX_CLASS


def build_cluster_entry(r: Reader, *, split: bool) -> ClusterEntry:
    gateway = _gateway(r)
    written_class = r.get("INGRESS_CLASS")
    if written_class is None:
        # The HTTPRoute replaces the Ingress unless an Ingress class is asked for too (a move between them).
        ingress_class = None if gateway is not None else INGRESS_NGINX_CLASS
    else:
        ingress_class = v.dns_label(written_class, r.label("INGRESS_CLASS"))
    if split and ingress_class not in (None, INGRESS_NGINX_CLASS):
        raise SpecError(
            r.label("INGRESS_CLASS"),
            ingress_class,
            "split serving needs the WebSocket handshake sent to its own Service, which an Ingress rule cannot "
            "match (only ingress-nginx's canary annotations can): set GATEWAY for an HTTPRoute, which matches "
            "the Upgrade header, or use ingress-nginx",
        )
    namespace = r.get("INGRESS_NAMESPACE")
    if namespace is None:
        if gateway is not None or ingress_class != INGRESS_NGINX_CLASS:
            # The NetworkPolicy would admit ingress-nginx's pods only: the app unreachable from the real one.
            raise SpecError(
                r.label("INGRESS_NAMESPACE"),
                None,
                "name the namespace of the pods that forward traffic to the app (the ingress controller's, or "
                "the Gateway's data plane: e.g. 'traefik', 'envoy-gateway-system', the Gateway's own): the "
                "NetworkPolicy admits only that one",
            )
        namespace = INGRESS_NGINX_NAMESPACE
    return ClusterEntry(
        ingress_class=ingress_class,
        gateway=gateway,
        ingress_namespace=v.dns_label(namespace, r.label("INGRESS_NAMESPACE")),
    )


def _gateway(r: Reader) -> GatewayRef | None:
    value = r.get("GATEWAY")
    if value is None:
        return None
    label = r.label("GATEWAY")
    parts = value.split("/") if isinstance(value, str) else None
    if parts is None or len(parts) > 2:
        raise SpecError(label, value, "must be the Gateway's 'name', or 'namespace/name' in another namespace")
    if len(parts) == 1:
        return GatewayRef(v.dns_label(parts[0], label))
    return GatewayRef(v.dns_label(parts[1], label), namespace=v.dns_label(parts[0], label))
