"""X-Forwarded-For/-Proto (and the root path) for servers that cannot apply them themselves.

granian and hypercorn have no trusted-proxy option; their argv loads
``deploykit.proxy:application``, which wraps the application named by
``DEPLOYKIT_SERVER_APP`` with :class:`ProxyHeadersMiddleware` trusting
``DEPLOYKIT_SERVER_TRUSTED_PROXIES`` (:mod:`deploykit.serverenv`). uvicorn and
gunicorn's uvicorn worker apply them themselves but leave them in the request,
where Django's SECURE_PROXY_SSL_HEADER reads them from anyone: on a TCP bind
their argv loads it too, to drop them from the peers outside
``DEPLOYKIT_SERVER_FORWARDED_ALLOW_IPS``. With
``DEPLOYKIT_SERVER_METRICS_PATH`` set, every server's argv loads it, and the
application is counted inside it (:mod:`deploykit.metrics`).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

ASGIApp = Any


#: What the trust list decides (ASGI header names are lower case): dropped from a peer outside it (Django reads
#: -Host and -Port with USE_X_FORWARDED_HOST / USE_X_FORWARDED_PORT).
_FORWARDED = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port"))
#: Addresses whose parsing (and trust) each process remembers.
_CACHED = 1024
_LONGEST = 80
#: X-Forwarded-Proto values that mean something; others are ignored.
_SCHEMES = ("http", "https", "ws", "wss")


def _address(part: str) -> str | None:
    """One X-Forwarded-For element as a bare IP address (brackets and a port dropped), or None."""
    part = part.strip()
    # Longer than "[IPv6%zone]:port" is no address: never parsed, never cached.
    return _parse(part) if len(part) <= _LONGEST else None


# Cached: every request carries the proxy's address and one X-Forwarded-For element, and
# ipaddress's parsing was most of the wrappers' cost (28-54 us of a WSGI request's wrapping on a
# busy 2-core machine, 6 us with the caches; on /whoami/ that is about a tenth of the WSGI side's
# CPU). Bounded in entries and in length, so forged values only cycle it.
@functools.lru_cache(maxsize=_CACHED)
def _parse(part: str) -> str | None:
    if part.startswith("["):
        part = part[1:].partition("]")[0]
    elif part.count(":") == 1:
        part = part.partition(":")[0]  # IPv4 with a port
    try:
        return str(ipaddress.ip_address(part))
    except ValueError:
        return None


def forwarded_scheme(proto: str) -> bool | None:
    """Whether X-Forwarded-Proto says the client's connection is secure; None for a value that means nothing."""
    proto = proto.strip().lower()
    return proto in ("https", "wss") if proto in _SCHEMES else None


class TrustedProxies:
    """Whom to believe X-Forwarded-* from, and the client they name: one rule for both servers of a plan
    (this module's ASGI middleware and :mod:`deploykit.wsgiproxy`).

    ``"*"`` trusts everyone, which a unix socket needs: it has no peer address.
    """

    def __init__(self, trusted: tuple[str, ...]) -> None:
        self.trust_all = "*" in trusted
        self.networks = [ipaddress.ip_network(t, strict=False) for t in trusted if t != "*"]
        # Answers by address, as _address caches (bounded the same way; a lost race only recomputes).
        self._answers: dict[str, bool] = {}

    def trusts(self, host: str | None) -> bool:
        if self.trust_all:
            return True
        if not host or not self.networks:
            return False
        answer = self._answers.get(host)
        if answer is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                answer = False
            else:
                answer = any(address in net for net in self.networks)
            if len(self._answers) >= _CACHED:
                self._answers.clear()
            self._answers[host] = answer
        return answer

    def client_host(self, forwarded: str) -> str | None:
        """The client's address in X-Forwarded-For, or None to keep the peer.

        From the right, past the trusted proxies: each proxy appends the address
        it saw, so the first untrusted one is the client; all trusted: the
        leftmost (a client on a proxy's own machine). Under ``*`` the rightmost,
        which the nearest proxy wrote (uvicorn takes the leftmost, which the
        client wrote). An element that is empty or not an address ends the walk
        with None: nothing trustworthy is left to its left (uvicorn's own cases,
        tests/test_proxy_uvicorn.py).
        """
        if self.trust_all:
            return _address(forwarded.rpartition(",")[2])
        hops = [_address(part) for part in forwarded.split(",")]
        for hop in reversed(hops):
            if hop is None or not self.trusts(hop):
                return hop
        return hops[0]


class ProxyHeadersMiddleware(TrustedProxies):
    """Apply X-Forwarded-For (the client past the trusted proxies) and X-Forwarded-Proto.

    Only for peers in ``trusted`` (``"*"`` trusts everyone, which a unix
    socket needs: it has no peer address); the others' X-Forwarded-* are
    dropped. ``server_trusts``: the server applied them itself for these peers
    (``trusted`` is empty then), and only the others' are dropped.
    """

    def __init__(
        self,
        app: ASGIApp,
        trusted: tuple[str, ...],
        root_path: str = "",
        server_trusts: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(trusted)
        self.app = app
        # The sub-path the site is under, for servers whose own option would
        # rewrite the path the proxy forwards (uvicorn prepends it).
        self.root_path = root_path
        self.server_trusts = None if server_trusts is None else TrustedProxies(server_trusts)

    def server_believed(self, client: tuple[str, int] | None) -> bool:
        """Whether the server applied X-Forwarded-* for this request's peer (they stay for the application)."""
        if self.server_trusts is None:
            return False
        # uvicorn's ProxyHeadersMiddleware (uvicorn/middleware/proxy_headers.py, in front of this one) has replaced
        # a trusted peer's client with the one X-Forwarded-For names: port 0 unless the header gave one. It leaves
        # an untrusted peer's client as the connection's, whose TCP port is never 0 and which the list does not
        # name. So port 0 or a listed address came through a trusted peer; anything else is dropped (a port in
        # X-Forwarded-For errs that way: the scheme and client uvicorn applied stay, only the headers go).
        if client is not None and client[1] == 0:
            return True
        return self.server_trusts.trusts(client[0] if client else None)

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] in ("http", "websocket") and self.root_path and not scope.get("root_path"):
            scope = dict(scope)  # type: ignore[assignment]
            scope["root_path"] = self.root_path
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if self.trusts(client[0] if client else None):
                scope = dict(scope)  # type: ignore[assignment]
                headers = dict(scope["headers"])
                secure = forwarded_scheme(headers.get(b"x-forwarded-proto", b"").decode("latin1"))
                if secure is not None:
                    if scope["type"] == "websocket":
                        scope["scheme"] = "wss" if secure else "ws"
                    else:
                        # Django knows http and https only.
                        scope["scheme"] = "https" if secure else "http"
                forwarded = headers.get(b"x-forwarded-for", b"").decode("latin1")
                host = self.client_host(forwarded) if forwarded else None
                if host:
                    scope["client"] = (host, 0)
            elif not self.server_believed(client) and any(name in _FORWARDED for name, _ in scope["headers"]):
                # Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto from the headers whoever sent
                # them (and apps read X-Forwarded-For): a peer outside the trust list loses them.
                scope = dict(scope)  # type: ignore[assignment]
                scope["headers"] = [(n, v) for n, v in scope["headers"] if n not in _FORWARDED]
        await self.app(scope, receive, send)


def build() -> ProxyHeadersMiddleware:
    """The application named by the server's environment, behind :class:`ProxyHeadersMiddleware`."""
    from django.utils.module_loading import import_string

    from deploykit import health, metrics, serverenv

    # From the environment the backend wrote next to the argv, never from a
    # plan rebuilt here: that one would have lost the command line's --bind.
    env = serverenv.read()
    if env.app is None:
        raise RuntimeError(
            f"{serverenv.APP} is not set: deploykit.proxy:application wraps the application it names "
            "(runasgi and the generated units set it)"
        )
    # Counted inside the proxy-header wrapper; answers METRICS_PATH before ALLOWED_HOSTS (scrapers use addresses).
    app = metrics.wrap(health.wrap(import_string(env.app), env), env)
    return ProxyHeadersMiddleware(app, env.trusted_proxies, env.root_path or "", env.forwarded_allow_ips)


class LazyApplication:
    """A server's application, built on first use, so importing its module needs no settings.

    A real module attribute, not a module ``__getattr__``: hypercorn loads the
    application with ``eval(name, vars(module))``, which never calls one.
    """

    def __init__(self, builder: Callable[[], ASGIApp]) -> None:
        self.builder = builder
        self.app: ASGIApp | None = None

    def build(self) -> ASGIApp:
        if self.app is None:
            self.app = self.builder()
        return self.app

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await self.build()(scope, receive, send)


#: ``deploykit.proxy:application``.
application = LazyApplication(build)
