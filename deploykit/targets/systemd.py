from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from deploykit.plan import Plan
from deploykit.servers import get_backend
from deploykit.targets.base import Target, ValidationFailed
from deploykit.targets.tooling import run_tool

#: What ``systemd-analyze security`` may rate the service at most (0 safest, 10 exposed).
MAX_EXPOSURE = 1.0
_EXPOSURE_RE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def _peer(host: str | None) -> str:
    """IPAddressAllow= entry for a peer: the address itself, 'localhost', or 'any' for a DNS name."""
    if not host or host == "localhost":
        return "localhost"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "any"  # a name resolves at run time to addresses we cannot know here
    return "localhost" if address.is_loopback else str(address)


def ip_address_allow(plan: Plan) -> tuple[str, ...]:
    """The peers the service talks to: loopback, the trusted proxies on a public bind, the channel layer,
    the databases and the mail server.

    ('any',) when one of them is a host name: set DEPLOYKIT["IP_ADDRESS_ALLOW"] then.
    """
    if plan.process_manager.ip_address_allow is not None:
        return tuple("any" if a == "*" else a for a in plan.process_manager.ip_address_allow)
    allow = ["localhost"]
    server = plan.server
    if not all(b.is_loopback for b in server.addresses):
        trusted = [a for a in server.forwarded_allow_ips if _peer(a.split("/")[0]) != "localhost"]
        # Only loopback trusted ("*" or the default): any host may be the proxy.
        allow += trusted if trusted and "*" not in trusted else ["any"]
    layer = plan.channel_layer
    for url in layer.hosts:
        parts = urlsplit(url)
        if parts.scheme != "unix":
            allow.append(_peer(parts.hostname))
    allow += [_peer(host) for host, _ in layer.sentinels]
    allow += [_peer(host) for host in plan.app.peer_hosts]
    allow = list(dict.fromkeys(allow))
    return ("any",) if "any" in allow else tuple(allow)


def exposure(unit: Path) -> float:
    """``systemd-analyze security --offline=yes`` rating of ``unit``."""
    output = run_tool(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)])
    match = _EXPOSURE_RE.search(output)
    if match is None:
        raise ValidationFailed(f"no exposure level in systemd-analyze's output:\n{output}")
    return float(match.group(1))


def verify(units: list[Path]) -> None:
    """``systemd-analyze verify``: syntax, and that ExecStart= binaries exist (here: the plan's virtualenv)."""
    run_tool(["systemd-analyze", "verify", "--man=no", *[str(u) for u in units]])


class Systemd(Target):
    name = "systemd"
    description = "systemd service: the server's exact argv, hardened (systemd-analyze security <= 1.0)"
    template = "deploykit/systemd/service"
    tool = "systemd-analyze"

    @property
    def filename(self) -> str:  # type: ignore[override]
        return f"{self.plan.process_manager.name}.service"

    def context(self) -> dict[str, object]:
        plan = self.plan
        pm = plan.process_manager
        backend = get_backend(plan)
        runtime = pm.runtime_directory
        allow = ip_address_allow(plan)
        return {
            "plan": plan,
            "pm": pm,
            "argv": backend.argv(),
            "reload_signal": backend.reload_signal,
            "socket_unit": f"{pm.name}.socket" if plan.server.listen.kind == "fd" else None,
            # RuntimeDirectory= takes a name under /run; systemd creates it
            # (owned by User:Group) at start and removes it at stop.
            "runtime_directory": runtime.removeprefix("/run/") if runtime.startswith("/run/") else None,
            "read_write_paths": [p for p in (plan.site.media_root,) if p],
            "ip_address_allow": None if allow == ("any",) else " ".join(allow),
            # An app under /home needs to read it: hide home directories from it otherwise.
            "protect_home": "read-only"
            if any(p.startswith(("/home/", "/root/")) for p in (pm.working_directory, pm.virtualenv))
            else "yes",
        }

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd"

    def validate(self, content: str, workdir: Path) -> None:
        self.require_tool()
        unit = workdir / self.filename
        unit.write_text(content, encoding="utf-8")
        verify([unit])
        score = exposure(unit)
        if score > MAX_EXPOSURE:
            raise ValidationFailed(f"systemd-analyze security rates {unit.name} {score} (more than {MAX_EXPOSURE})")


class SystemdSocket(Target):
    name = "systemd-socket"
    description = "systemd socket unit (socket activation; the service takes the socket as fd 3: use --fd 3)"
    template = "deploykit/systemd/socket"
    tool = "systemd-analyze"

    @property
    def filename(self) -> str:  # type: ignore[override]
        return f"{self.plan.process_manager.name}.socket"

    def context(self) -> dict[str, object]:
        return {"plan": self.plan, "pm": self.plan.process_manager, "address": self.plan.server.address}

    def applies(self) -> bool:
        return self.plan.process_manager.kind == "systemd" and self.plan.server.listen.kind == "fd"

    def validate(self, content: str, workdir: Path) -> None:
        self.require_tool()
        unit = workdir / self.filename
        unit.write_text(content, encoding="utf-8")
        service = workdir / f"{self.plan.process_manager.name}.service"
        if not service.exists():
            # verify wants the service the socket activates.
            service.write_text(Systemd(self.plan).render(), encoding="utf-8")
        verify([unit])
