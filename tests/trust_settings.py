"""testproject.production without SECURE_PROXY_SSL_HEADER, for tests/test_forwarded_trust.py.

Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto straight from the
request, whoever sent it: with it, request.scheme says nothing about what the
server decided. Without it, request.scheme is the ASGI scope's scheme, which the
server (or deploykit's proxy middleware) sets from X-Forwarded-Proto only for a
trusted peer. DEPLOYKIT has no BIND, as in production: the settings' own plan
binds a unix socket, and trusts every peer ("*").
"""

from __future__ import annotations

from testproject.production import *  # noqa: F403

SECURE_PROXY_SSL_HEADER = None
