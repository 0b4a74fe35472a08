"""X-Forwarded-For/-Proto and the root path for the WSGI side of a split plan (issue 15).

The WSGI servers' argv loads ``deploykit.wsgiproxy:application``, which wraps
the application named by ``DEPLOYKIT_SERVER_APP`` and trusts
``DEPLOYKIT_SERVER_TRUSTED_PROXIES`` (:mod:`deploykit.serverenv`), with the
parsing :mod:`deploykit.proxy` applies on the ASGI side: both sides of one plan
name the same client. granian has no trust option at all, and gunicorn's
``--forwarded-allow-ips`` only decides the scheme: it never sets REMOTE_ADDR
from X-Forwarded-For.

Like :mod:`deploykit.proxy`, it reads the environment, never a rebuilt plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from deploykit.proxy import TrustedProxies, forwarded_scheme

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: What the trust list decides: dropped from a peer outside it (Django reads -Host and -Port with
#: USE_X_FORWARDED_HOST / USE_X_FORWARDED_PORT).
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")


class WsgiProxyHeaders(TrustedProxies):
    """Apply X-Forwarded-For and X-Forwarded-Proto from trusted peers; move the root path to SCRIPT_NAME."""

    def __init__(self, app: WSGIApp, trusted: tuple[str, ...], root_path: str = "") -> None:
        super().__init__(trusted)
        self.app = app
        self.root_path = root_path

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.root_path and not environ.get("SCRIPT_NAME"):
            # The proxies forward the whole path (/sub/x); Django resolves PATH_INFO,
            # so the prefix goes to SCRIPT_NAME, as Django's ASGI handler does with root_path.
            environ["SCRIPT_NAME"] = self.root_path
            path = environ.get("PATH_INFO", "")
            if path == self.root_path or path.startswith(self.root_path + "/"):
                environ["PATH_INFO"] = path[len(self.root_path) :] or "/"
        if self.trusts(environ.get("REMOTE_ADDR") or None):
            secure = forwarded_scheme(environ.get("HTTP_X_FORWARDED_PROTO", ""))
            if secure is not None:
                environ["wsgi.url_scheme"] = "https" if secure else "http"
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
            host = self.client_host(forwarded) if forwarded else None
            if host:
                environ["REMOTE_ADDR"] = host
        else:
            # Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto from request.META whoever sent it (and
            # apps read X-Forwarded-For): a peer outside the trust list must not reach them either.
            for name in FORWARDED:
                environ.pop(name, None)
        return self.app(environ, start_response)


def _build() -> WsgiProxyHeaders:
    from django.utils.module_loading import import_string

    from deploykit import serverenv
    from deploykit.wsgihealth import WsgiReadiness

    env = serverenv.read()
    if env.app is None:
        raise RuntimeError(
            f"{serverenv.APP} is not set: deploykit.wsgiproxy:application wraps the WSGI application it names "
            "(runasgi --role http and the generated units set it)"
        )
    app = import_string(env.app)  # Django's get_wsgi_application(): settings are set up from here
    if env.health_path is not None:
        # Inside the proxy-headers wrapper: the root path is in SCRIPT_NAME by then.
        app = WsgiReadiness(app, env.health_path, env.drain_file)
    if env.metrics_dir is not None:
        from deploykit.metrics.wsgi import WsgiCounting

        app = WsgiCounting(app, env.metrics_dir)
    return WsgiProxyHeaders(app, env.trusted_proxies, env.root_path or "")


class _Application:
    """``deploykit.wsgiproxy:application``: built on first use (importing this module needs no settings).

    The first requests arrive on several threads at once (gthread, granian's
    blocking threads): one builds, the others wait for it.
    """

    def __init__(self) -> None:
        self.app: WsgiProxyHeaders | None = None
        self.lock = threading.Lock()

    def build(self) -> WsgiProxyHeaders:
        if self.app is None:
            with self.lock:
                if self.app is None:
                    self.app = _build()
        return self.app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.build()(environ, start_response)


application = _Application()
