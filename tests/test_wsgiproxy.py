"""deploykit.wsgiproxy: the WSGI side trusts X-Forwarded-* exactly as deploykit.proxy does the ASGI side."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from deploykit.proxy import ProxyHeadersMiddleware
from deploykit.wsgiproxy import WsgiProxyHeaders

Environ = dict[str, Any]


def seen(trusted: tuple[str, ...], environ: Environ, root_path: str = "") -> Environ:
    got: list[Environ] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        got.append(dict(environ))
        return [b""]

    WsgiProxyHeaders(app, trusted, root_path)(dict(environ), lambda *a: None)
    return got[0]


def request(peer: str, forwarded_for: str | None = None, proto: str | None = None, path: str = "/x/") -> Environ:
    environ: Environ = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http", "PATH_INFO": path, "SCRIPT_NAME": ""}
    if forwarded_for is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
    if proto is not None:
        environ["HTTP_X_FORWARDED_PROTO"] = proto
    return environ


def test_trusted_peer_gives_the_rightmost_address_and_the_scheme() -> None:
    environ = seen(("127.0.0.1", "::1"), request("127.0.0.1", "6.6.6.6, 203.0.113.7", "https"))
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("203.0.113.7", "https")


def test_untrusted_peer_changes_nothing() -> None:
    environ = seen(("127.0.0.1",), request("127.0.0.2", "6.6.6.6", "https"))
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("127.0.0.2", "http")


def test_untrusted_peer_headers_do_not_reach_the_app() -> None:
    """Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto from request.META whoever sent it; the
    server's trust list decides, so the headers of a peer outside it are dropped (is_secure() stays False)."""
    environ = seen(("127.0.0.1",), request("127.0.0.2", "6.6.6.6", "https"))
    assert "HTTP_X_FORWARDED_PROTO" not in environ and "HTTP_X_FORWARDED_FOR" not in environ


def test_untrusted_peer_loses_x_forwarded_host_and_port_too() -> None:
    """Django reads them with USE_X_FORWARDED_HOST / USE_X_FORWARDED_PORT, from whoever sent them."""
    forged = {"HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_X_FORWARDED_PORT": "443", "HTTP_HOST": "example.com"}
    environ = seen(("127.0.0.1",), {**request("127.0.0.2"), **forged})
    assert "HTTP_X_FORWARDED_HOST" not in environ and "HTTP_X_FORWARDED_PORT" not in environ
    assert environ["HTTP_HOST"] == "example.com"
    trusted = seen(("127.0.0.1",), {**request("127.0.0.1"), **forged})
    assert (trusted["HTTP_X_FORWARDED_HOST"], trusted["HTTP_X_FORWARDED_PORT"]) == ("evil.example", "443")


def test_trusted_peer_headers_reach_the_app() -> None:
    environ = seen(("127.0.0.1",), request("127.0.0.1", "6.6.6.6", "https"))
    assert (environ["HTTP_X_FORWARDED_PROTO"], environ["HTTP_X_FORWARDED_FOR"]) == ("https", "6.6.6.6")


def test_unix_socket_peer_is_trusted_under_star() -> None:
    # granian and gunicorn give a unix socket's peer as an empty address.
    environ = seen(("*",), request("", "203.0.113.7", "https"))
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("203.0.113.7", "https")


def test_unknown_scheme_is_ignored() -> None:
    assert seen(("*",), request("", None, "gopher"))["wsgi.url_scheme"] == "http"


def test_root_path_moves_from_the_path_to_script_name() -> None:
    # nginx forwards /chat/x/ whole; Django resolves PATH_INFO, so the prefix goes to SCRIPT_NAME (as ASGI root_path).
    environ = seen(("*",), request("", path="/chat/x/"), root_path="/chat")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/chat", "/x/")
    environ = seen(("*",), request("", path="/chatroom/"), root_path="/chat")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/chat", "/chatroom/")


@pytest.mark.parametrize(
    ("trusted", "forwarded"),
    [
        (("127.0.0.1",), "1.2.3.4, 127.0.0.1"),
        (("10.0.0.0/8",), "1.2.3.4, 10.0.0.2, 10.0.0.3"),
        (("127.0.0.1",), "garbage, 1.2.3.4"),
        (("127.0.0.1",), "[2001:db8::1]:443"),
        (("*",), "1.2.3.4, 5.6.7.8"),
    ],
)
def test_the_client_is_the_one_the_asgi_side_finds(trusted: tuple[str, ...], forwarded: str) -> None:
    """Same parsing code as deploykit.proxy (uvicorn's own cases): both sides name the same client."""
    peer = "10.0.0.9" if "10.0.0.0/8" in trusted else "127.0.0.1"  # a trusted proxy
    asgi = ProxyHeadersMiddleware(None, trusted).client_host(forwarded)
    environ = seen(trusted, request(peer, forwarded))
    assert environ["REMOTE_ADDR"] == (asgi or peer)


def test_the_trust_caches_stay_bounded_and_right() -> None:
    """Answers are cached per address (parsing was most of the wrapper's cost); forged values only cycle them."""
    from deploykit import proxy

    trusted = proxy.TrustedProxies(("127.0.0.1", "10.0.0.0/8"))
    for i in range(proxy._CACHED + 100):
        assert not trusted.trusts(f"192.0.2.{i % 250}-{i}")
        assert trusted.trusts(f"10.0.{i // 250}.{i % 250}")
    assert len(trusted._answers) <= proxy._CACHED
    assert trusted.trusts("127.0.0.1") and not trusted.trusts("127.0.0.2")
    assert trusted.client_host("6.6.6.6, 10.0.0.1") == "6.6.6.6"
    assert proxy._address(" " + "1" * 200 + " ") is None
    assert proxy._parse.cache_info().maxsize == proxy._CACHED
