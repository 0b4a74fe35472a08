"""deploykit.proxy against uvicorn's own proxy-header test cases (issue 14 item 17).

Adapted from encode/uvicorn tests/middleware/test_proxy_headers.py (commit
e6c7ce79, 2025-09-03): the same inputs and expected ``scheme://host:port``,
through deploykit's ProxyHeadersMiddleware called as an ASGI app. Where
deploykit deliberately differs, the case says so and why:

- under ``*`` deploykit takes the RIGHTMOST address, uvicorn the leftmost: the
  generated proxies overwrite X-Forwarded-For with the peer's address, and a
  client writes whatever it likes to the left of it;
- trusted literals (``unix:///foo/bar``, names) do not exist: FORWARDED_ALLOW_IPS
  is validated into addresses and networks (a SpecError otherwise), so uvicorn's
  literal cases have no counterpart;
- an element that is not an IP address (garbage, ``unix:``) is not a client:
  the peer stays, as for an empty element;
- ``wss`` / ``ws`` on a plain HTTP request give ``https`` / ``http``: Django
  knows only those two schemes for a request.
"""

from __future__ import annotations

from typing import Any

import pytest

from deploykit.proxy import ProxyHeadersMiddleware

PEER = ("127.0.0.1", 123)


async def seen(
    trusted: tuple[str, ...], headers: dict[str, str], kind: str = "http", client: tuple[str, int] = PEER
) -> str:
    """What the app sees: ``scheme://host:port``."""
    result: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        host, port = scope["client"]
        result.append(f"{scope['scheme']}://{host}:{port}")

    scope = {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "client": client,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "path": "/",
    }
    await ProxyHeadersMiddleware(app, trusted)(scope, None, None)  # type: ignore[arg-type]
    return result[0]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        (("*",), "https://1.2.3.4:0"),
        (("127.0.0.1",), "https://1.2.3.4:0"),
        (("127.0.0.1", "10.0.0.1"), "https://1.2.3.4:0"),
        (("127.0.0.0/24", "10.0.0.1"), "https://1.2.3.4:0"),
        (("192.168.0.1",), "http://127.0.0.1:123"),
        (("192.168.0.0/16",), "http://127.0.0.1:123"),
        (("127.0.0.1", "1.2.3.4"), "https://1.2.3.4:0"),
    ],
)
async def test_trusted_hosts(trusted: tuple[str, ...], expected: str) -> None:
    assert await seen(trusted, {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}) == expected


@pytest.mark.parametrize(
    ("forwarded_for", "forwarded_proto", "expected"),
    [
        ("", "", "http://127.0.0.1:123"),
        ("", None, "http://127.0.0.1:123"),
        ("", "asdf", "http://127.0.0.1:123"),
        (" , ", "https", "https://127.0.0.1:123"),
        (", , ", "https", "https://127.0.0.1:123"),
        (" , 10.0.0.1", "https", "https://127.0.0.1:123"),
        ("9.9.9.9 , , , 10.0.0.1", "https", "https://127.0.0.1:123"),
        (", , 9.9.9.9", "https", "https://9.9.9.9:0"),
        (", , 9.9.9.9, , ", "https", "https://127.0.0.1:123"),
    ],
)
async def test_malformed(forwarded_for: str, forwarded_proto: str | None, expected: str) -> None:
    headers = {"X-Forwarded-For": forwarded_for}
    if forwarded_proto is not None:
        headers["X-Forwarded-Proto"] = forwarded_proto
    assert await seen(("127.0.0.1", "10.0.0.0/8"), headers) == expected


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        # Deliberate difference: uvicorn 1.2.3.4 (leftmost); the rightmost is what our proxy wrote.
        (("*",), "https://192.168.0.2:0"),
        (("127.0.0.1", "10.0.2.1", "192.168.0.2"), "https://1.2.3.4:0"),
        (("10.0.2.1", "192.168.0.2", "127.0.0.1"), "https://1.2.3.4:0"),
        # The first untrusted hop from the right.
        (("192.168.0.2", "127.0.0.1"), "https://10.0.2.1:0"),
        (("127.0.0.1", "10.0.0.0/8", "192.168.0.2"), "https://1.2.3.4:0"),
    ],
)
async def test_multiple_proxies(trusted: tuple[str, ...], expected: str) -> None:
    headers = {"X-Forwarded-For": "1.2.3.4, 10.0.2.1, 192.168.0.2", "X-Forwarded-Proto": "https"}
    assert await seen(trusted, headers) == expected


async def test_invalid_x_forwarded_for() -> None:
    # uvicorn: 1.2.3.4 (leftmost, under "*"). deploykit: the rightmost, ::1.
    headers = {"X-Forwarded-For": "1.2.3.4, \xf0\xfd\xfd\xfd, unix:, ::1", "X-Forwarded-Proto": "https"}
    assert await seen(("*",), headers) == "https://::1:0"
    # Not an address: the peer stays (uvicorn would make the garbage the client).
    assert await seen(("127.0.0.1",), {"X-Forwarded-For": "1.2.3.4, \xf0\xfd\xfd\xfd"}) == "http://127.0.0.1:123"
    assert await seen(("127.0.0.1",), {"X-Forwarded-For": "unix:"}) == "http://127.0.0.1:123"


@pytest.mark.parametrize(
    ("forwarded_proto", "expected"),
    [("http", "ws://1.2.3.4:0"), ("https", "wss://1.2.3.4:0"), ("ws", "ws://1.2.3.4:0"), ("wss", "wss://1.2.3.4:0")],
)
async def test_websocket_x_forwarded_proto(forwarded_proto: str, expected: str) -> None:
    headers = {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": forwarded_proto}
    assert await seen(("*",), headers, kind="websocket") == expected


@pytest.mark.parametrize(("forwarded_proto", "expected"), [("ws", "http"), ("wss", "https")])
async def test_websocket_proto_on_http_is_the_http_scheme(forwarded_proto: str, expected: str) -> None:
    assert (await seen(("*",), {"X-Forwarded-Proto": forwarded_proto})).startswith(f"{expected}://")


async def test_empty_x_forwarded_for() -> None:
    assert await seen(("*",), {"X-Forwarded-For": "", "X-Forwarded-Proto": "https"}) == "https://127.0.0.1:123"


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [("1.2.3.4:5678", "1.2.3.4"), ("[2001:db8::1]:443", "2001:db8::1"), ("[2001:db8::1]", "2001:db8::1")],
)
async def test_a_port_is_not_part_of_the_host(forwarded_for: str, expected: str) -> None:
    assert await seen(("127.0.0.1",), {"X-Forwarded-For": forwarded_for}) == f"http://{expected}:0"
