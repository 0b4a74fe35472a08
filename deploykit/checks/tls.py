"""Checks on the TLS policy the proxies serve: HSTS against Mozilla's guidelines."""

from __future__ import annotations

from django.core import checks

from deploykit.plan import Plan
from deploykit.targets.web import MOZILLA_GUIDELINES, MOZILLA_HSTS_MIN_AGE


def hsts_preload_below_minimum(plan: Plan) -> list[checks.CheckMessage]:
    """Preload asked with a max-age under Mozilla's two years (guidelines 6.0 ``hsts_min_age``).

    hstspreload.org refuses a submission under one year (31536000) and shows
    63072000 in its example header; once preloaded, a site stays HTTPS-only in
    browsers for months whatever it sends, so the header should promise as much.
    """
    site = plan.site
    if not site.hsts_preload or site.hsts_seconds >= MOZILLA_HSTS_MIN_AGE:
        return []
    return [
        checks.Warning(
            f"SECURE_HSTS_PRELOAD is set with SECURE_HSTS_SECONDS = {site.hsts_seconds}, under the "
            f"{MOZILLA_HSTS_MIN_AGE} (two years) of Mozilla's TLS guidelines {MOZILLA_GUIDELINES}; "
            "hstspreload.org refuses under 31536000. The proxies send the same Strict-Transport-Security.",
            hint=f"Set SECURE_HSTS_SECONDS = {MOZILLA_HSTS_MIN_AGE} (with SECURE_HSTS_INCLUDE_SUBDOMAINS), "
            "or drop SECURE_HSTS_PRELOAD.",
            id="deploykit.W011",
        )
    ]
