from __future__ import annotations

import importlib.util
from typing import ClassVar

from deploykit.plan import Bind, Plan, build_plan


def plan_in_server() -> Plan:
    """The plan inside a server process that loaded deploykit's code, not Django's.

    The proxy application, gunicorn's worker class and hypercorn's config module
    run where only ``DJANGO_SETTINGS_MODULE`` is known: set Django up, then build.
    """
    import django

    django.setup(set_prefix=False)
    return build_plan()


class ServerBackend:
    """Builds one ASGI server's argv from the plan.

    The argv is what ``runasgi`` executes and what the systemd, supervisor and
    container targets write, so they cannot disagree.
    """

    name: ClassVar[str]
    #: Module whose presence means the server is installed, and the pip extra.
    module: ClassVar[str]
    extra: ClassVar[str]
    #: The signal that makes the server reload its workers gracefully, if any.
    reload_signal: ClassVar[str | None] = None
    #: Whether the server applies X-Forwarded-* itself, from a trust list.
    handles_proxy_headers: ClassVar[bool] = True
    #: Whether ``--reload`` is native (else runasgi wraps Django's autoreloader).
    native_reload: ClassVar[bool] = True

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.server = plan.server

    @classmethod
    def is_installed(cls) -> bool:
        return importlib.util.find_spec(cls.module) is not None

    def prefix(self) -> list[str]:
        return [self.plan.process_manager.python, "-m", self.module]

    @property
    def target(self) -> str:
        if self.server.proxy_headers and not self.handles_proxy_headers:
            # The server cannot trust X-Forwarded-* itself: deploykit's
            # middleware does it, from the plan's FORWARDED_ALLOW_IPS.
            return "deploykit.proxy:application"
        return self.plan.app.asgi_target

    def argv(self, *, reload: bool = False) -> list[str]:
        raise NotImplementedError

    def bind_args(self, bind: Bind) -> list[str]:
        raise NotImplementedError

    def run(self, argv: list[str], *, reload: bool = False) -> None:
        """Become the server (exec), or supervise it under Django's autoreloader."""
        from deploykit import runner

        runner.run(self, argv, reload=reload)
