from __future__ import annotations

from django.apps import AppConfig


class DeployKitConfig(AppConfig):
    name = "deploykit"
    verbose_name = "deploykit"

    def ready(self) -> None:
        from deploykit import checks

        checks.register()
