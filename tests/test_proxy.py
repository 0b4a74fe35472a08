"""deploykit.proxy: the forwarded-header trust granian and hypercorn run behind (their argv loads it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from deploykit.proxy import ProxyHeadersMiddleware
from tests.settings import DEPLOYKIT as TEST_DEPLOYKIT

Scope = dict[str, Any]


class Recorder:
    """The wrapped app: keeps the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scopes.append(scope)


async def seen(trusted: tuple[str, ...], scope: Scope) -> Scope:
    inner = Recorder()
    await ProxyHeadersMiddleware(inner, trusted)(scope, None, None)  # type: ignore[arg-type]
    [got] = inner.scopes
    return got


def http(client: tuple[str, int] | None, *headers: tuple[bytes, bytes], kind: str = "http") -> Scope:
    return {"type": kind, "scheme": "ws" if kind == "websocket" else "http", "client": client, "headers": list(headers)}


SPOOF = ((b"x-forwarded-for", b"6.6.6.6, 203.0.113.7"), (b"x-forwarded-proto", b"https"))


async def test_trusted_peer_gives_the_rightmost_address_and_the_scheme() -> None:
    scope = await seen(("127.0.0.1", "::1"), http(("127.0.0.1", 5000), *SPOOF))
    # The rightmost value is the one our proxy wrote; what the client sent stands left of it.
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


async def test_websocket_scheme_becomes_wss() -> None:
    scope = await seen(("127.0.0.0/8",), http(("127.0.0.9", 5000), *SPOOF, kind="websocket"))
    assert scope["scheme"] == "wss"


async def test_untrusted_peer_is_left_as_it_is() -> None:
    original = http(("198.51.100.1", 5000), *SPOOF)
    scope = await seen(("127.0.0.1",), original)
    assert scope["client"] == ("198.51.100.1", 5000)
    assert scope["scheme"] == "http"


async def test_untrusted_peer_headers_do_not_reach_the_app() -> None:
    """As on the WSGI side: Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto from the request's
    headers whoever sent them, so a peer outside the trust list loses them (other headers stay, in order)."""
    other = (b"host", b"example.com")
    scope = await seen(("127.0.0.1",), http(("127.0.0.2", 5000), *SPOOF, other))
    assert scope["headers"] == [other]
    trusted = await seen(("127.0.0.1",), http(("127.0.0.1", 5000), *SPOOF, other))
    assert trusted["headers"] == [*SPOOF, other]


async def test_untrusted_peer_loses_x_forwarded_host_and_port_too() -> None:
    """Django reads them with USE_X_FORWARDED_HOST / USE_X_FORWARDED_PORT, from whoever sent them."""
    forged = ((b"x-forwarded-host", b"evil.example"), (b"x-forwarded-port", b"443"))
    other = (b"host", b"example.com")
    assert (await seen(("127.0.0.1",), http(("127.0.0.2", 5000), *forged, other)))["headers"] == [other]
    assert (await seen(("127.0.0.1",), http(("127.0.0.1", 5000), *forged, other)))["headers"] == [*forged, other]


async def test_unix_socket_peer_is_trusted_only_with_a_star() -> None:
    assert (await seen(("127.0.0.1",), http(None, *SPOOF)))["client"] is None
    assert (await seen(("*",), http(None, *SPOOF)))["client"] == ("203.0.113.7", 0)


async def test_unknown_proto_is_ignored() -> None:
    scope = await seen(("*",), http(("127.0.0.1", 1), (b"x-forwarded-proto", b"gopher")))
    assert scope["scheme"] == "http"


async def test_lifespan_passes_through_untouched() -> None:
    original: Scope = {"type": "lifespan"}
    assert await seen(("*",), original) is original


def test_application_wraps_the_app_and_trust_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import deploykit.proxy

    # A plain module attribute (hypercorn looks it up in vars(module)), built on first use
    # from the environment the backend wrote, never from settings (issue 13).
    assert "application" in vars(deploykit.proxy)
    monkeypatch.setattr(deploykit.proxy.application, "app", None)
    monkeypatch.setenv("DEPLOYKIT_SERVER_APP", "testproject.asgi.application")
    monkeypatch.setenv("DEPLOYKIT_SERVER_TRUSTED_PROXIES", "10.0.0.0/8")
    with override_settings(DEPLOYKIT={"FORWARDED_ALLOW_IPS": ["*"]}):
        app = deploykit.proxy.application.build()
    assert app.trusts("10.1.2.3") and not app.trusts("127.0.0.1") and not app.trust_all
    from testproject.asgi import application

    assert app.app is application


def test_application_without_its_environment_trusts_loopback_only_and_needs_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import deploykit.proxy

    monkeypatch.setattr(deploykit.proxy.application, "app", None)
    monkeypatch.delenv("DEPLOYKIT_SERVER_APP", raising=False)
    with pytest.raises(RuntimeError, match="DEPLOYKIT_SERVER_APP is not set"):
        deploykit.proxy.application.build()
    monkeypatch.setenv("DEPLOYKIT_SERVER_APP", "testproject.asgi.application")
    monkeypatch.delenv("DEPLOYKIT_SERVER_TRUSTED_PROXIES", raising=False)
    app = deploykit.proxy.application.build()
    assert app.trusts("127.0.0.1") and not app.trusts("10.1.2.3")


# -- uvicorn and gunicorn's uvicorn worker: the server applied X-Forwarded-* itself --------------------------


async def behind_uvicorn(server_trusts: tuple[str, ...], scope: Scope) -> Scope:
    """What the application sees behind uvicorn's own ProxyHeadersMiddleware (``--forwarded-allow-ips``) and
    deploykit's wrapper as the uvicorn backend's environment configures it: nothing to apply, the server's trust
    list to drop the headers of the peers outside it."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware as UvicornProxyHeaders

    inner = Recorder()
    wrapper = ProxyHeadersMiddleware(inner, (), server_trusts=server_trusts)
    await UvicornProxyHeaders(wrapper, list(server_trusts))(scope, None, None)  # type: ignore[arg-type]
    [got] = inner.scopes
    return got


FORWARDED_HOST = (b"x-forwarded-host", b"chat.example.com")


async def test_behind_uvicorn_an_untrusted_peer_loses_the_headers_uvicorn_left() -> None:
    """uvicorn ignores them for the scope, but Django's SECURE_PROXY_SSL_HEADER would read them."""
    other = (b"host", b"example.com")
    scope = await behind_uvicorn(("127.0.0.1", "::1"), http(("127.0.0.2", 5000), *SPOOF, FORWARDED_HOST, other))
    assert (scope["client"], scope["scheme"], scope["headers"]) == (("127.0.0.2", 5000), "http", [other])


async def test_behind_uvicorn_the_trusted_proxy_keeps_its_headers() -> None:
    """uvicorn has replaced the client with the one X-Forwarded-For names (port 0): still the proxy's request."""
    headers = [*SPOOF, FORWARDED_HOST]
    scope = await behind_uvicorn(("127.0.0.1", "::1"), http(("127.0.0.1", 5000), *headers))
    assert (scope["client"], scope["scheme"], scope["headers"]) == (("203.0.113.7", 0), "https", headers)
    # Without X-Forwarded-For the client stays the proxy, which the list names.
    scope = await behind_uvicorn(("127.0.0.1",), http(("127.0.0.1", 5000), (b"x-forwarded-proto", b"https")))
    assert (scope["scheme"], scope["headers"]) == ("https", [(b"x-forwarded-proto", b"https")])
    # Every X-Forwarded-For hop trusted: the leftmost, trusted as well.
    hops = (b"x-forwarded-for", b"10.0.0.2, 10.0.0.3")
    scope = await behind_uvicorn(("10.0.0.0/8",), http(("10.0.0.4", 5000), hops, FORWARDED_HOST))
    assert (scope["client"], scope["headers"]) == (("10.0.0.2", 0), [hops, FORWARDED_HOST])


async def test_behind_uvicorn_an_ipv6_peer_is_judged_by_the_list() -> None:
    scope = await behind_uvicorn(("127.0.0.1",), http(("::1", 5000), *SPOOF))
    assert (scope["client"], scope["scheme"], scope["headers"]) == (("::1", 5000), "http", [])
    scope = await behind_uvicorn(("2001:db8::/32",), http(("2001:db8::7", 5000), *SPOOF, kind="websocket"))
    assert (scope["client"], scope["scheme"], scope["headers"]) == (("203.0.113.7", 0), "wss", list(SPOOF))


async def test_behind_uvicorn_a_unix_socket_peer_is_trusted_only_with_a_star() -> None:
    assert (await behind_uvicorn(("127.0.0.1",), http(None, *SPOOF)))["headers"] == []
    assert (await behind_uvicorn(("*",), http(None, *SPOOF)))["headers"] == list(SPOOF)


async def test_behind_uvicorn_a_forwarded_port_errs_on_the_safe_side() -> None:
    """uvicorn 0.54 takes a port from X-Forwarded-For: the client is then indistinguishable from a peer
    outside the list, and its headers go. The scheme and client uvicorn applied stay (Django falls back to
    the scope's scheme without the header); only USE_X_FORWARDED_HOST loses the proxy's host."""
    forwarded = ((b"x-forwarded-for", b"203.0.113.7:4711"), (b"x-forwarded-proto", b"https"))
    scope = await behind_uvicorn(("127.0.0.1",), http(("127.0.0.1", 5000), *forwarded))
    assert (scope["client"], scope["scheme"], scope["headers"]) == (("203.0.113.7", 4711), "https", [])


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_uvicorn_and_gunicorn_on_tcp_serve_the_wrapper_with_their_trust_list(server: str) -> None:
    from deploykit import serverenv
    from deploykit.plan import build_plan
    from deploykit.servers import get_backend

    for drain, target in ((30, "deploykit.drain:application"), (0, "deploykit.proxy:application")):
        with override_settings(DEPLOYKIT={**TEST_DEPLOYKIT, "DRAIN_TIMEOUT": drain}):
            backend = get_backend(build_plan({"SERVER": server, "BIND": "[::1]:9000", "WORKERS": 1}))
        env = backend.environment()
        assert backend.target == target
        assert env[serverenv.FORWARDED_ALLOW_IPS] == "127.0.0.1,::1"
        assert env[serverenv.TRUSTED_PROXIES] == ""  # the server applies them: the wrapper must not again
        read = serverenv.read(env)
        assert (read.wraps_proxy, read.trusted_proxies, read.forwarded_allow_ips) == (True, (), ("127.0.0.1", "::1"))


@pytest.mark.parametrize(
    ("server", "overrides"),
    [
        ("uvicorn", {}),  # the unix socket: "*"
        ("gunicorn", {"BIND": "0.0.0.0:8000", "FORWARDED_ALLOW_IPS": "*"}),
        ("uvicorn", {"BIND": "127.0.0.1:8000", "PROXY_HEADERS": False}),
        ("daphne", {"BIND": "127.0.0.1:8000"}),  # believes every peer (W001; runasgi refuses a public bind)
        ("granian", {"BIND": "127.0.0.1:8000"}),  # deploykit.proxy applies the list itself
    ],
)
def test_no_server_trust_list_where_nothing_is_left_to_drop(server: str, overrides: dict[str, Any]) -> None:
    from deploykit import serverenv
    from deploykit.plan import build_plan
    from deploykit.servers import get_backend

    with override_settings(DEPLOYKIT={**TEST_DEPLOYKIT, "DRAIN_TIMEOUT": 0}):
        backend = get_backend(build_plan({"SERVER": server, "WORKERS": 1, **overrides}))
    assert serverenv.FORWARDED_ALLOW_IPS not in backend.environment()
    if server in ("uvicorn", "gunicorn", "daphne"):
        assert backend.target == "testproject.asgi:application"  # no wrapper, no cost per request


def test_application_reads_the_servers_trust_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import deploykit.proxy

    monkeypatch.setattr(deploykit.proxy.application, "app", None)
    monkeypatch.setenv("DEPLOYKIT_SERVER_APP", "testproject.asgi.application")
    monkeypatch.setenv("DEPLOYKIT_SERVER_TRUSTED_PROXIES", "")
    monkeypatch.setenv("DEPLOYKIT_SERVER_FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    app = deploykit.proxy.application.build()
    assert not app.trusts("10.1.2.3")
    assert app.server_trusts is not None and app.server_trusts.trusts("10.1.2.3")


@pytest.mark.parametrize(
    ("server", "overrides", "kept_for"),
    [
        ("uvicorn", {"ROOT_PATH": "/x"}, "*"),  # the unix socket: every peer
        ("daphne", {"BIND": "127.0.0.1:8000", "METRICS_PATH": "/-/metrics"}, "*"),  # believes every peer
        ("gunicorn", {"BIND": "127.0.0.1:8000", "ROOT_PATH": "/x"}, "127.0.0.1,::1"),
    ],
)
async def test_a_wrapper_served_for_another_reason_keeps_what_the_server_believed(
    server: str, overrides: dict[str, Any], kept_for: str
) -> None:
    """A sub-path or METRICS_PATH serves deploykit.proxy in front of a server that applied X-Forwarded-* itself:
    the headers of the peers it believed stay (USE_X_FORWARDED_HOST reads the proxy's -Host)."""
    from deploykit import serverenv
    from deploykit.plan import build_plan
    from deploykit.servers import get_backend

    with override_settings(DEPLOYKIT={**TEST_DEPLOYKIT, "DRAIN_TIMEOUT": 0, **overrides}):
        backend = get_backend(build_plan({"SERVER": server, "WORKERS": 1}))
    assert backend.target == "deploykit.proxy:application"
    env = serverenv.read(backend.environment())
    assert env.forwarded_allow_ips == tuple(kept_for.split(","))
    inner = Recorder()
    wrapper = ProxyHeadersMiddleware(inner, env.trusted_proxies, server_trusts=env.forwarded_allow_ips)
    # As the server hands it on: the client it took from X-Forwarded-For, the proxy's own headers.
    await wrapper(http(("203.0.113.7", 0), *SPOOF, FORWARDED_HOST), None, None)  # type: ignore[arg-type]
    assert inner.scopes[0]["headers"] == [*SPOOF, FORWARDED_HOST]
