"""Checks on two slots (issue 16): slots that would collide, a proxy that would not follow the switch,
a channel layer that would split the rooms while both slots serve."""

from __future__ import annotations

from django.core import checks

from deploykit.plan import Plan
from deploykit.redeploy import addresses


def _collisions(plan: Plan) -> list[str]:
    found = []
    first, second = plan.slots
    shared = sorted({str(b) for b in addresses(first)} & {str(b) for b in addresses(second)})
    if shared:
        found.append(
            f"slots {first.name} and {second.name} both listen on {', '.join(shared)} (WSGI_BIND pins one "
            "address): the new slot cannot bind it while the old one still serves"
        )
    if plan.site.upstream != plan.server.addresses:
        found.append(
            f"the proxy balances over UPSTREAM ({', '.join(str(b) for b in plan.site.upstream)}), not the slots' "
            "sockets: switching the upstream file would switch nothing"
        )
    if plan.process_manager.kind == "systemd" and plan.server.listen.kind == "fd":
        found.append(
            "the server takes its socket from socket activation (FD): one socket unit, which both slots would "
            "share, so the old slot keeps accepting what the switch sends to the new one"
        )
    return found


def slots_collide(plan: Plan) -> list[checks.CheckMessage]:
    if not plan.slots:
        return []
    return [
        checks.Error(
            f"Two slots (DEPLOYKIT['SLOTS']): {problem}.",
            hint="Let the plan give each slot its own sockets: unset WSGI_BIND, UPSTREAM and FD with SLOTS "
            "(a TCP BIND gives each slot the ports after the other's).",
            id="deploykit.E007",
        )
        for problem in _collisions(plan)
    ]


def slots_split_the_rooms(plan: Plan) -> list[checks.CheckMessage]:
    if not plan.slots or plan.channel_layer.crosses_processes:
        return []
    return [
        checks.Warning(
            f"Two slots with a channel layer that does not cross processes ({plan.channel_layer.kind}): while the "
            "old slot drains, both serve, and a group message sent on one never reaches the other's clients.",
            hint="Use channels_redis (deployconfig channels writes it), as any plan with more than one process must.",
            id="deploykit.W020",
        )
    ]
