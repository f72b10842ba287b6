"""The phases of an IPv6 rollout and what each phase's gate judges. Pure.

Order: the plan's routers first (every server's gateway must exist before a server can prove
its route), then the canary alone, then the other servers in batches of ``batch_size``, each in
plan order. The gate after a phase runs the IPv6 checks on every host rolled out so far, each
judged against the planned state of what is rolled out: a host's peers, and the servers an
isolated host must not reach, are narrowed to hosts already done, so a server is not failed for
a peer that is still waiting its turn, nor credited with not reaching an address nobody has
yet. The last gate therefore judges the full plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Phase:
    name: str  # "routers", "canary", "batch 1", ...
    hosts: tuple[str, ...]


def phases(
    servers: Sequence[str], routers: Sequence[str], canary: str | None, batch_size: int
) -> list[Phase]:
    """Routers, then the canary (default: the first server), then batches of the rest."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    result = []
    if routers:
        result.append(Phase("routers", tuple(routers)))
    rest = list(servers)
    if canary is None and rest:
        canary = rest[0]
    if canary is not None:
        if canary not in rest:
            raise ValueError(f"canary '{canary}' is not a server of the plan")
        result.append(Phase("canary", (canary,)))
        rest.remove(canary)
    for number, start in enumerate(range(0, len(rest), batch_size), start=1):
        result.append(Phase(f"batch {number}", tuple(rest[start : start + batch_size])))
    return result


def narrowed(planned: dict[str, Any], done: Sequence[str]) -> dict[str, Any]:
    """A host's planned state with its peers and unreachable servers narrowed to the hosts
    rolled out so far."""
    return {
        **planned,
        **{
            key: [p for p in planned[key] if p["host"] in done]
            for key in ("peers", "unreachable")
            if key in planned
        },
    }


def gate_hostvars(
    planned: dict[str, dict[str, Any]], done: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``cityguard_ipv6`` of the hosts rolled out so far, for the gate's inventory."""
    return {host: {"cityguard_ipv6": narrowed(planned[host], done)} for host in done}
