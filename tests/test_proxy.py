"""deploykit.proxy: the forwarded-header trust granian and hypercorn run behind (their argv loads it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from deploykit.proxy import ProxyHeadersMiddleware

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
