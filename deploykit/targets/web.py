"""What the three proxy targets (nginx, Apache, Caddy) share: TLS policy, immutable static files, ports.

One home for each: the templates differ by syntax, not by policy.
"""

from __future__ import annotations

#: https://ssl-config.mozilla.org/#server=nginx&config=intermediate (guidelines 5.7)
MOZILLA_INTERMEDIATE_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
#: ManifestStaticFilesStorage names files name.<12 hex>.ext: those never change.
HASH_DIGITS = 12
HASHED_STATIC_REGEX = rf"\.[0-9a-f]{{{HASH_DIGITS}}}\.[A-Za-z0-9]+$"
#: The same without braces, which a Caddyfile reads as placeholders.
HASHED_STATIC_REGEX_NO_BRACES = r"\." + "[0-9a-f]" * HASH_DIGITS + r"\.[A-Za-z0-9]+$"
#: A year, the longest Cache-Control lifetime browsers honour in practice.
IMMUTABLE_MAX_AGE = 31536000


def port_suffix(port: int, default: int) -> str:
    """``:port`` in a URL, or nothing for the scheme's default port."""
    return "" if port == default else f":{port}"
