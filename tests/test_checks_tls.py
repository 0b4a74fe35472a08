"""deploykit.W011: HSTS preload with a max-age under Mozilla's minimum (issue 14 item 15)."""

from __future__ import annotations

from django.test import override_settings

from deploykit import checks


def w011(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [m.msg for m in checks.check_deploy() if m.id == "deploykit.W011"]


def test_w011_hsts_preload_below_two_years() -> None:
    one_year = w011(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_PRELOAD=True, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
    assert one_year == [
        "SECURE_HSTS_PRELOAD is set with SECURE_HSTS_SECONDS = 31536000, under the 63072000 (two years) of "
        "Mozilla's TLS guidelines 6.0; hstspreload.org refuses under 31536000. The proxies send the same "
        "Strict-Transport-Security."
    ]
    assert w011(SECURE_HSTS_SECONDS=63072000, SECURE_HSTS_PRELOAD=True) == []
    assert w011(SECURE_HSTS_SECONDS=3600) == []  # no preload asked: Django's own checks cover HSTS
