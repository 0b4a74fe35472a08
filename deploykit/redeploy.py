"""Two slots and a switch (issue 16): the redeploy procedure behind ``manage.py redeploy``.

1. The live slot is the one the proxy's upstream file names (the file is the one source of truth).
2. The other slot is (re)started through the plan's process manager, its stale drain file removed first.
3. Its readiness endpoint must answer 200 over each of its own sockets; on timeout it is stopped again,
   the live slot untouched.
4. The upstream file is replaced atomically by the new slot's, the proxy's own test run on it (a failure
   puts the old file back and stops the new slot), then the proxy reloads gracefully.
5. The old slot is drained (its drain file: its WebSockets close with 1012 over DRAIN_TIMEOUT, its
   readiness answers 503), it is stopped once no connection is left on its sockets or the window ends.

Every external action is a command (systemctl / supervisorctl, the proxy's test and reload), derived
from the plan and overridable, run through one runner, so ``--dry-run`` prints exactly what would run.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploykit import drainfile
from deploykit.plan import Bind, Plan, Slot
from deploykit.slotprobes import open_connections, probe
from deploykit.targets.upstream import live_slot, upstream_content
from deploykit.writing import write_atomic

#: Seconds each command (systemctl, supervisorctl, the proxy's test) may take.
COMMAND_TIMEOUT = 120
#: Seconds between two looks at the new slot's readiness, or at the old slot's connections.
POLL_INTERVAL = 0.2
#: Seconds between the proxy's reload and the drain. A reload returns once signalled: the proxy's old workers
#: take moments more to stop accepting, and a client drained at once could reconnect through one of them to
#: the old slot, which refuses it (403) or, accepted just before it saw the drain, closes it late.
SETTLE = 2.0


class RedeployError(Exception):
    """The procedure stopped; the message says where, why, and in which state it left things."""


@dataclass(frozen=True)
class Commands:
    """The commands the procedure runs (argv prefixes, shell-split when given as options)."""

    #: systemctl / supervisorctl (with its -c CONF), before the action and the services.
    manager: tuple[str, ...]
    proxy_test: tuple[str, ...]
    proxy_reload: tuple[str, ...]


def default_commands(plan: Plan) -> Commands:
    """The plan's commands: its process manager's, and the proxy's own test and graceful reload."""
    manager = ("systemctl",) if plan.process_manager.kind == "systemd" else ("supervisorctl",)
    proxy = plan.site.proxy
    if proxy == "nginx":
        return Commands(manager, ("nginx", "-t"), ("nginx", "-s", "reload"))
    if proxy == "apache":
        return Commands(manager, ("apachectl", "-t"), ("apachectl", "graceful"))
    caddyfile = ("--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile")
    return Commands(manager, ("caddy", "validate", *caddyfile), ("caddy", "reload", *caddyfile))


def with_overrides(commands: Commands, **given: str | None) -> Commands:
    """``commands`` with the ones given on the command line (shell words) in place."""
    values = {name: tuple(shlex.split(text)) for name, text in given.items() if text}
    for name, argv in values.items():
        if not argv:
            raise RedeployError(f"--{name.replace('_', '-')} is empty")
    return Commands(**{**commands.__dict__, **values})


def manager_argv(plan: Plan, commands: Commands, action: str, slot: Slot) -> list[str]:
    """``systemctl ACTION NAME-SLOT.service ...`` or ``supervisorctl ACTION NAME-SLOT:* ...``."""
    if plan.process_manager.kind == "systemd":
        return [*commands.manager, action, *(f"{service}.service" for service in slot.services)]
    return [*commands.manager, action, *(f"{service}:*" for service in slot.services)]


def addresses(slot: Slot) -> list[Bind]:
    """Where the slot's servers listen: the ASGI server's sockets, then the WSGI server's."""
    return [*slot.server.addresses, *(slot.wsgi.addresses if slot.wsgi is not None else ())]


def drain_files(slot: Slot) -> list[str]:
    """The files whose appearance drains the slot's servers (DEPLOYKIT_SERVER_DRAIN_FILE; none: drain off)."""
    files = [slot.server.drain_file, slot.wsgi.drain_file if slot.wsgi is not None else None]
    return [f for f in files if f]


def drain_window(slot: Slot) -> float:
    """Seconds the old slot gets to close its WebSockets: DRAIN_TIMEOUT, then the drain's own margin (the last
    close, the application's websocket_disconnect); 0 with the drain off (stopping closes them all at once)."""
    timeout = slot.server.drain_timeout
    return timeout + drainfile.WAIT_MARGIN if timeout else 0.0


# -- the procedure -----------------------------------------------------------------------------


Runner = Callable[[Sequence[str]], str]


def run_command(argv: Sequence[str]) -> str:
    """Run one command to completion; its output, or RedeployError with it."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as exc:
        raise RedeployError(f"{argv[0]} is not installed ({shlex.join(argv)})") from exc
    except subprocess.TimeoutExpired as exc:
        raise RedeployError(f"{shlex.join(argv)} did not finish in {COMMAND_TIMEOUT}s") from exc
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise RedeployError(f"{shlex.join(argv)} failed ({done.returncode}): {output}")
    # supervisorctl exits 0 on some failures and says so ("ERROR (spawn error)", "ERROR (no such group)").
    if "ERROR" in output and argv and Path(argv[0]).name == "supervisorctl":
        raise RedeployError(f"{shlex.join(argv)}: {output}")
    return output


@dataclass
class Redeploy:
    """One switch from the live slot to the other; :meth:`execute` does it, :meth:`steps` describes it."""

    plan: Plan
    commands: Commands
    ready_timeout: float = 60.0
    settle: float = SETTLE
    run: Runner = run_command
    say: Callable[[str], None] = print
    probe: Callable[[Bind, str], str] = probe
    connections: Callable[[Sequence[Bind]], int] = open_connections
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    timings: dict[str, float] = field(default_factory=dict)
    #: When the old slot's drain began (epoch seconds), for measuring what it spread.
    drain_began: float = 0.0
    #: Connections open on the old slot's sockets before the proxy's reload, and after it settled: what the
    #: drain still has to close. A proxy that drops the WebSockets it tunnels on reload (Caddy 2.6) leaves 0.
    reload_kept: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if not self.plan.slots or self.plan.upstream_file is None:
            raise RedeployError('DEPLOYKIT["SLOTS"] is not set: there is no other slot to switch to')
        if self.plan.app.health_path is None:
            raise RedeployError('DEPLOYKIT["HEALTH_PATH"] is not set: a new slot cannot be known ready')
        self.upstream_path = Path(self.plan.upstream_file)

    def live(self) -> Slot:
        """The slot the upstream file names."""
        try:
            text = self.upstream_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RedeployError(
                f"{self.upstream_path} does not exist: install it first (deployconfig {self.plan.site.proxy} writes "
                "it with the first slot live, INSTALL.md)"
            ) from None
        name = live_slot(text)
        names = [s.name for s in self.plan.slots]
        if name not in names:
            raise RedeployError(f"{self.upstream_path} names no slot of {names} on its first line (found {name!r})")
        return self.plan.slot(name)

    def other(self, slot: Slot) -> Slot:
        return next(s for s in self.plan.slots if s.name != slot.name)

    def steps(self) -> list[str]:
        """What :meth:`execute` would do, in order (``--dry-run``)."""
        old = self.live()
        new = self.other(old)
        c, health = self.commands, self.plan.app.health_path
        where = ", ".join(str(b) for b in addresses(new))
        drains = ", ".join(drain_files(old))
        return [
            f"live slot: {old.name} (named by {self.upstream_path})",
            *(f"remove the stale drain file {f}" for f in drain_files(new)),
            f"start slot {new.name}: {shlex.join(manager_argv(self.plan, c, 'restart', new))}",
            f"wait until GET {health} answers 200 on {where} (at most {self.ready_timeout:.0f}s; "
            f"else stop slot {new.name}: {shlex.join(manager_argv(self.plan, c, 'stop', new))})",
            f"write {self.upstream_path} for slot {new.name} (atomically; the old one is kept to put back)",
            f"test the proxy: {shlex.join(c.proxy_test)} (a failure puts the old file back and stops slot {new.name})",
            f"reload the proxy: {shlex.join(c.proxy_reload)}; its old workers get {self.settle:g}s to stop accepting",
            *(
                [
                    f"drain slot {old.name}: create {drains} (its WebSockets close with 1012 over DRAIN_TIMEOUT, "
                    f"{old.server.drain_timeout}s)",
                    f"wait until no connection is open on {', '.join(str(b) for b in addresses(old))} "
                    f"(at most {drain_window(old):.0f}s)",
                ]
                if drains
                else [f"no drain (DRAIN_TIMEOUT is 0): stopping slot {old.name} closes its WebSockets at once"]
            ),
            f"stop slot {old.name}: {shlex.join(manager_argv(self.plan, c, 'stop', old))}",
        ]

    def execute(self) -> Slot:
        """Switch to the other slot; the new live slot. RedeployError leaves the old slot live."""
        old = self.live()
        new = self.other(old)
        self.say(f"live slot: {old.name}; starting slot {new.name}")
        start = self.clock()
        for path in drain_files(new):
            Path(path).unlink(missing_ok=True)
        try:
            self.run(manager_argv(self.plan, self.commands, "restart", new))
        except RedeployError as exc:
            raise self._abandon(new, f"starting slot {new.name} failed ({exc})") from exc
        self._wait_ready(new)
        self.timings["ready_s"] = self.clock() - start
        before = self.connections(addresses(old))
        self._switch(old, new)
        self.timings["switched_s"] = self.clock() - start
        self.say(f"switched the proxy to slot {new.name}; draining slot {old.name}")
        self.sleep(self.settle)
        self.reload_kept = (before, self.connections(addresses(old)))
        self.say(
            f"slot {old.name}: {before} connection(s) open before the proxy's reload, {self.reload_kept[1]} after it "
            "settled"
        )
        drained_at = self.clock()
        self.drain_began = time.time()
        for path in drain_files(old):
            drainfile.start(path)
        left = self._wait_empty(old) if drain_files(old) else 0
        self.timings["drain_s"] = self.clock() - drained_at
        try:
            self.run(manager_argv(self.plan, self.commands, "stop", old))
        except RedeployError as exc:
            raise RedeployError(
                f"slot {new.name} is live (the proxy uses it); slot {old.name} is drained but stopping it failed: {exc}"
            ) from exc
        self.timings["total_s"] = self.clock() - start
        state = "empty" if left == 0 else f"{left} connection(s) still open at the end of DRAIN_TIMEOUT"
        self.say(f"stopped slot {old.name} ({state}); slot {new.name} is live")
        return new

    def _abandon(self, new: Slot, reason: str) -> RedeployError:
        try:
            self.run(manager_argv(self.plan, self.commands, "stop", new))
            stopped = f"slot {new.name} stopped again"
        except RedeployError as exc:
            stopped = f"stopping slot {new.name} failed too: {exc}"
        return RedeployError(f"{reason}; {stopped}; the live slot and the proxy are as they were")

    def _wait_ready(self, new: Slot) -> None:
        health = self.plan.app.health_path
        assert health is not None
        deadline = self.clock() + self.ready_timeout
        pending = addresses(new)
        last = ""
        while pending:
            last = self.probe(pending[0], health)
            if last == "200":
                pending.pop(0)
                continue
            if self.clock() > deadline:
                raise self._abandon(
                    new,
                    f"slot {new.name} was not ready after {self.ready_timeout:.0f}s: GET {health} on {pending[0]} "
                    f"answered {last}",
                )
            self.sleep(POLL_INTERVAL)

    def _switch(self, old: Slot, new: Slot) -> None:
        previous = self.upstream_path.read_text(encoding="utf-8")
        write_atomic(self.upstream_path, upstream_content(self.plan, new.name), force=True)
        try:
            self.run(self.commands.proxy_test)
        except RedeployError as exc:
            write_atomic(self.upstream_path, previous, force=True)
            reason = f"the proxy refused the upstream file of slot {new.name} ({exc}); the old one is back"
            raise self._abandon(new, reason) from exc
        try:
            self.run(self.commands.proxy_reload)
        except RedeployError as exc:
            write_atomic(self.upstream_path, previous, force=True)
            raise self._abandon(
                new, f"reloading the proxy failed ({exc}); the upstream file of slot {old.name} is back in place"
            ) from exc

    def _wait_empty(self, old: Slot) -> int:
        deadline = self.clock() + drain_window(old)
        binds = addresses(old)
        while True:
            left = self.connections(binds)
            if left == 0 or self.clock() > deadline:
                return left
            self.sleep(POLL_INTERVAL)
