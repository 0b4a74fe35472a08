"""What dropping an untrusted peer's X-Forwarded-* costs behind uvicorn: per HTTP request, A/B in one run.

``python -m bench.forwarded_overhead`` (a few seconds; not part of the test suite). On a TCP bind, uvicorn
and gunicorn's uvicorn worker now serve the application through ``deploykit.proxy``'s middleware, which
keeps the headers of the peers uvicorn trusted and drops the others'. In process, behind uvicorn's own
ProxyHeadersMiddleware (what ``--proxy-headers --forwarded-allow-ips`` installs) and the same tiny app, with
(A) and without (B) deploykit's middleware, alternated in rounds; the difference of the medians is its cost,
for three requests: through the proxy (a trusted peer with X-Forwarded-For/-Proto), a trusted peer without
them, and a peer outside the list that forges them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware as UvicornProxyHeaders

from deploykit.proxy import ProxyHeadersMiddleware

ROUNDS = 7
CALLS = 20_000
TRUST = ("127.0.0.1", "::1")
FORWARDED = [(b"host", b"chat.example.com"), (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]
REQUESTS = {
    "proxied": (("127.0.0.1", 40000), FORWARDED),
    "trusted, no headers": (("127.0.0.1", 40000), FORWARDED[:1]),
    "untrusted, forged": (("127.0.0.2", 40000), FORWARDED),
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Nothing: the wrappers' share is then the largest it can be."""


async def per_call(chain: Any, client: tuple[str, int], headers: list[tuple[bytes, bytes]]) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        # A new scope per request, as the server builds one (uvicorn's middleware changes it in place).
        await chain({"type": "http", "scheme": "http", "client": client, "headers": headers}, None, None)
    return (time.perf_counter() - start) / CALLS * 1e6


async def main() -> None:
    with_wrapper = UvicornProxyHeaders(ProxyHeadersMiddleware(app, (), server_trusts=TRUST), list(TRUST))
    without = UvicornProxyHeaders(app, list(TRUST))
    for name, (client, headers) in REQUESTS.items():
        a: list[float] = []
        b: list[float] = []
        for _ in range(ROUNDS):
            a.append(await per_call(with_wrapper, client, headers))
            b.append(await per_call(without, client, headers))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:22} with {ma:5.2f} us  without {mb:5.2f} us  added {ma - mb:5.2f} us per request")


if __name__ == "__main__":
    asyncio.run(main())
