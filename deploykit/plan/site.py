"""The site section: what the reverse proxy serves (names, ports, TLS, static and media, limits)."""

from __future__ import annotations

from deploykit import validators as v
from deploykit.conf import django_setting
from deploykit.exceptions import SpecError
from deploykit.plan.machine import installed_nginx_version
from deploykit.plan.model import PROXIES, TLS, Bind, Server, Site
from deploykit.plan.reader import Reader


def build_site(r: Reader, server: Server) -> Site:
    proxy = v.choice(r.get("PROXY"), r.label("PROXY"), PROXIES)
    names = written = r.get("SERVER_NAMES")
    if names is None:
        names_label = "ALLOWED_HOSTS"
        written = hosts = django_setting("ALLOWED_HOSTS") or []
        if not hosts and django_setting("DEBUG"):
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        # "*" is Django's wildcard, not a server name; an nginx catch-all is "_".
        names = [h for h in hosts if h != "*"] if isinstance(hosts, (list, tuple)) else hosts
    else:
        names_label = r.label("SERVER_NAMES")
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise SpecError(names_label, written, "must be a list of host names")
    if not names:
        raise SpecError(names_label, written, "needs at least one host name for server_name (not only '*')")
    server_names = tuple(dict.fromkeys(v.hostname(n, names_label) for n in names))

    listen = r.get("LISTEN_ADDRESS")
    if listen is not None:
        listen = v.ip_or_network(listen, r.label("LISTEN_ADDRESS"))
        if "/" in listen and not listen.endswith(("/32", "/128")):
            raise SpecError(r.label("LISTEN_ADDRESS"), listen, "must be one IP address")
        listen = listen.split("/")[0]

    cert, key, acme = r.get("TLS_CERTIFICATE"), r.get("TLS_CERTIFICATE_KEY"), r.get("ACME_WEBROOT")
    tls: TLS | None = None
    if cert is not None or key is not None:
        if cert is None or key is None:
            missing = "TLS_CERTIFICATE" if cert is None else "TLS_CERTIFICATE_KEY"
            raise SpecError(r.label(missing), None, "TLS_CERTIFICATE and TLS_CERTIFICATE_KEY go together")
        tls = TLS(
            certificate=v.absolute_path(cert, r.label("TLS_CERTIFICATE")),
            certificate_key=v.absolute_path(key, r.label("TLS_CERTIFICATE_KEY")),
            acme_webroot=None if acme is None else v.absolute_path(acme, r.label("ACME_WEBROOT")),
        )
    elif acme is not None:
        tls = TLS(acme_webroot=v.absolute_path(acme, r.label("ACME_WEBROOT")))

    static_url, static_root = _static("STATIC_URL", "STATIC_ROOT", server.root_path)
    media_url, media_root = _static("MEDIA_URL", "MEDIA_ROOT", server.root_path)

    # Not DATA_UPLOAD_MAX_MEMORY_SIZE: Django limits request bodies without
    # files by it, but file uploads by nothing, so a proxy limit taken from it
    # answers 413 to uploads Django accepts. MAX_BODY_SIZE (bytes, 0: no
    # limit) defaults to 100 MiB in conf.DEFAULTS.
    max_body = v.integer(r.get("MAX_BODY_SIZE"), r.label("MAX_BODY_SIZE"), minimum=0, maximum=2**40)

    read_timeout = r.get("PROXY_READ_TIMEOUT")
    if read_timeout is None:
        read_timeout = max(60, 2 * server.websocket_ping_interval + server.websocket_ping_timeout)
    read_timeout = v.integer(read_timeout, r.label("PROXY_READ_TIMEOUT"), minimum=1, maximum=86400 * 7)

    ssl_header = django_setting("SECURE_PROXY_SSL_HEADER")
    if ssl_header is not None:
        if not (isinstance(ssl_header, (tuple, list)) and len(ssl_header) == 2):
            raise SpecError("SECURE_PROXY_SSL_HEADER", ssl_header, "must be a (header, value) pair")
        ssl_header = (
            v.meta_header(ssl_header[0], "SECURE_PROXY_SSL_HEADER[0]"),
            v.token(ssl_header[1], "SECURE_PROXY_SSL_HEADER[1]"),
        )

    upstream_setting = r.get("UPSTREAM")
    if upstream_setting is None:
        upstream = server.addresses
    else:
        if isinstance(upstream_setting, str) or not isinstance(upstream_setting, (list, tuple)) or not upstream_setting:
            raise SpecError(r.label("UPSTREAM"), upstream_setting, "must be a list of HOST:PORT")
        upstream = tuple(
            Bind("tcp", host=h, port=p) for h, p in (v.host_port(u, r.label("UPSTREAM")) for u in upstream_setting)
        )

    version = r.get("NGINX_VERSION")
    nginx_version = installed_nginx_version() if version is None else v.version(version, r.label("NGINX_VERSION"))
    return Site(
        proxy=proxy,
        nginx_version=nginx_version,
        server_names=server_names,
        listen_address=listen,
        http_port=v.port(r.get("HTTP_PORT"), r.label("HTTP_PORT")),
        https_port=v.port(r.get("HTTPS_PORT"), r.label("HTTPS_PORT")),
        tls=tls,
        root_path=server.root_path,
        static_url=static_url,
        static_root=static_root,
        media_url=media_url,
        media_root=media_root,
        max_body_size=max_body,
        proxy_read_timeout=read_timeout,
        hsts_seconds=v.integer(django_setting("SECURE_HSTS_SECONDS", 0) or 0, "SECURE_HSTS_SECONDS", maximum=2**31),
        hsts_include_subdomains=bool(django_setting("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)),
        hsts_preload=bool(django_setting("SECURE_HSTS_PRELOAD", False)),
        proxy_ssl_header=ssl_header,
        upstream=upstream,
        sticky_sessions=v.boolean(r.get("STICKY_SESSIONS"), r.label("STICKY_SESSIONS")),
        health_public=v.boolean(r.get("HEALTH_PUBLIC"), r.label("HEALTH_PUBLIC")),
        trusted_proxies=_trusted_proxies(r),
    )


def _trusted_proxies(r: Reader) -> tuple[str, ...]:
    """TRUSTED_PROXIES: the edge in front of the proxy. Not FORWARDED_ALLOW_IPS, whom the app server
    believes (the proxy itself); a '*' here would let every client name its own address."""
    label = r.label("TRUSTED_PROXIES")
    value = written = r.get("TRUSTED_PROXIES")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise SpecError(label, written, "must be a list of the CDN's or load balancer's addresses or networks")
    trusted = []
    for item in value:
        text = v.ip_or_network(item, label)
        if text == "*":
            raise SpecError(
                label, item, "'*' would let every client name its own address: list the edge's addresses or networks"
            )
        trusted.append(text)
    return tuple(dict.fromkeys(trusted))


def _static(url_setting: str, root_setting: str, root_path: str) -> tuple[str | None, str | None]:
    """(URL path the proxy serves, directory) or (None, None) when the proxy has nothing to serve."""
    url = django_setting(url_setting)
    root = django_setting(root_setting)
    if not url or not root or "://" in str(url) or str(url).startswith("//"):
        return None, None
    url = str(url)
    if not url.startswith("/"):
        # Django prefixes a relative STATIC_URL with the script name.
        url = f"{root_path}/{url}"
    return v.url_path(url, url_setting), v.absolute_path(str(root), root_setting)
