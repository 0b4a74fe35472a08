"""Checks on the site: host names, origins, the proxy's headers and timeouts, URLs under a sub-path."""

from __future__ import annotations

import ipaddress

from django.core import checks

from deploykit.plan import Plan, bracket

#: request.META headers our proxy templates set (nginx, apache, caddy: X-Forwarded-Proto: $scheme).
PROXY_SET_HEADERS = {
    "nginx": {"HTTP_X_FORWARDED_PROTO"},
    "apache": {"HTTP_X_FORWARDED_PROTO"},
    "caddy": {"HTTP_X_FORWARDED_PROTO"},
}


def allowed_hosts_wildcard_with_websockets(plan: Plan) -> list[checks.CheckMessage]:
    if "*" in plan.app.allowed_hosts and plan.app.serves_websockets:
        return [
            checks.Error(
                "ALLOWED_HOSTS contains '*' and the WebSocket routes rely on AllowedHostsOriginValidator: "
                "it then accepts every Origin, so any web page can open a WebSocket with the user's cookies.",
                hint="List the site's host names in ALLOWED_HOSTS instead of '*'.",
                id="deploykit.E003",
            )
        ]
    return []


def ssl_header_not_set_by_proxy(plan: Plan) -> list[checks.CheckMessage]:
    header = plan.site.proxy_ssl_header
    if header is not None and header[0] not in PROXY_SET_HEADERS.get(plan.site.proxy, set()):
        return [
            checks.Error(
                f"SECURE_PROXY_SSL_HEADER names {header[0]}, which the {plan.site.proxy} config deploykit writes "
                "does not set: a client can send it and claim HTTPS.",
                hint='Use SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https"), which the proxy overwrites.',
                id="deploykit.E004",
            )
        ]
    return []


def ssl_header_believed_from_any_peer(plan: Plan) -> list[checks.CheckMessage]:
    # With PROXY_HEADERS on, every server but daphne (W001) drops X-Forwarded-* from peers outside
    # FORWARDED_ALLOW_IPS before Django reads them (deploykit.proxy, deploykit.wsgiproxy). Off, the server
    # trusts no peer and, unless deploykit's wrapper is served anyway (a sub-path, METRICS_PATH), passes every
    # peer's headers on: whoever reaches a TCP port can claim HTTPS.
    from deploykit.servers import get_backend
    from deploykit.servers.wsgi import get_wsgi_backend

    header = plan.site.proxy_ssl_header
    if header is None or plan.server.proxy_headers:
        return []
    sides = [(plan.server.addresses, get_backend(plan).wrapped)]
    if plan.wsgi is not None:
        sides.append((plan.wsgi.addresses, get_wsgi_backend(plan).wrapped))
    exposed = [b for addresses, wrapped in sides if not wrapped for b in addresses if b.kind != "unix"]
    if not exposed:
        return []
    return [
        checks.Warning(
            f"SECURE_PROXY_SSL_HEADER reads {header[0]} while PROXY_HEADERS is off and the server listens on "
            f"{exposed[0]}: the server passes every peer's X-Forwarded-* on, so any client that reaches the port "
            "can claim HTTPS.",
            hint='Leave DEPLOYKIT["PROXY_HEADERS"] on (the headers then reach Django from FORWARDED_ALLOW_IPS '
            "only), or bind a unix socket.",
            id="deploykit.W027",
        )
    ]


def proxy_read_timeout_not_above_ping(plan: Plan) -> list[checks.CheckMessage]:
    timeout, ping = plan.site.proxy_read_timeout, plan.server.websocket_ping_interval
    if timeout <= ping:
        return [
            checks.Warning(
                f"The proxy read timeout ({timeout}s) is not above the WebSocket ping interval ({ping}s): "
                "the proxy closes idle WebSockets between pings.",
                hint='Raise DEPLOYKIT["PROXY_READ_TIMEOUT"] (or leave it unset: deploykit derives it) or lower '
                "WEBSOCKET_PING_INTERVAL.",
                id="deploykit.W005",
            )
        ]
    return []


def _origin_trusted(origin: str, trusted: list[str]) -> bool:
    scheme, _, host = origin.partition("://")
    for entry in trusted:
        t_scheme, _, t_host = str(entry).partition("://")
        if t_scheme != scheme:
            continue
        if t_host == host or (t_host.startswith("*.") and (host.endswith(t_host[1:]) or host == t_host[2:])):
            return True
    return False


def csrf_trusted_origins_missing(plan: Plan) -> list[checks.CheckMessage]:
    if plan.site.tls is None:
        return []
    port = "" if plan.site.https_port == 443 else f":{plan.site.https_port}"
    trusted = list(plan.app.csrf_trusted_origins)
    missing = []
    for name in plan.site.server_names:
        host = "*" + name if name.startswith(".") else name
        host = bracket(host)
        origin = f"https://{host}{port}"
        if not _origin_trusted(origin, trusted):
            missing.append(origin)
    if missing:
        return [
            checks.Warning(
                f"CSRF_TRUSTED_ORIGINS lacks the site's https origins: {', '.join(missing)}.",
                hint=f"Add them: CSRF_TRUSTED_ORIGINS = {missing!r} (plus any you already trust).",
                id="deploykit.W006",
            )
        ]
    return []


def relative_static_url_under_sub_path(plan: Plan) -> list[checks.CheckMessage]:
    if not plan.site.root_path:
        return []
    relative = list(plan.app.relative_urls)
    if relative:
        return [
            checks.Warning(
                f"{' and '.join(relative)} relative while the site is under {plan.site.root_path}: Django "
                "caches the prefixed URL on first access, which under ASGI can happen before a request sets the "
                "script prefix, so pages link /static/... where the proxy serves "
                f"{plan.site.root_path}/static/.",
                hint="Write them absolute: "
                + ", ".join(f'{name} = "{plan.site.root_path}/{name.split("_")[0].lower()}/"' for name in relative)
                + ".",
                id="deploykit.W008",
            )
        ]
    return []


#: Shorter prefixes than these cover whole regions of the internet, not one CDN's or load balancer's
#: addresses: Cloudflare's widest network is a /13, a VPC's a /8.
BROADEST_EDGE_PREFIX = {4: 8, 6: 16}


def trusted_proxies_too_broad(plan: Plan) -> list[checks.CheckMessage]:
    broad = [
        network
        for network in plan.site.trusted_proxies
        if (parsed := ipaddress.ip_network(network, strict=False)).prefixlen < BROADEST_EDGE_PREFIX[parsed.version]
    ]
    if broad:
        return [
            checks.Warning(
                f'DEPLOYKIT["TRUSTED_PROXIES"] trusts {", ".join(broad)}: a client from there can write any '
                "address in X-Forwarded-For (and https in X-Forwarded-Proto) and the app believes it.",
                hint="List only the CDN's published networks or the load balancer's own addresses (its subnet).",
                id="deploykit.W023",
            )
        ]
    return []


def trusted_proxies_while_server_ignores_them(plan: Plan) -> list[checks.CheckMessage]:
    if plan.site.trusted_proxies and not plan.server.proxy_headers:
        return [
            checks.Warning(
                'DEPLOYKIT["TRUSTED_PROXIES"] is set while PROXY_HEADERS is off: the proxy finds the client '
                "behind the edge and passes it on in X-Forwarded-For, and the server ignores it, so the app sees "
                "the proxy's address for every request.",
                hint='Leave DEPLOYKIT["PROXY_HEADERS"] on (the server then trusts the proxy, FORWARDED_ALLOW_IPS).',
                id="deploykit.W024",
            )
        ]
    return []
