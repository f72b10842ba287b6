"""A host's nftables rules as a small model: the ruleset loaded now (`nft -j list ruleset`)
and the one /etc/nftables.conf would load at boot, parsed into chains of rules whose matches
and verdicts `firewall.evaluate` can replay against a described packet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import needs, or_error


@dataclass(frozen=True)
class Match:
    left: str  # e.g. "meta iifname", "tcp dport", "ip saddr", "ct state"
    op: str  # ==, !=, in
    right: frozenset[str]

    def text(self) -> str:
        values = ",".join(sorted(self.right))
        op = "" if self.op in ("==", "in") else f"{self.op} "
        return f"{self.left} {op}{values}"


@dataclass(frozen=True)
class Rule:
    matches: tuple[Match, ...]
    verdict: str | None  # accept, drop, reject, jump:<chain>, goto:<chain>, return, or None
    position: int

    def text(self) -> str:
        parts = [m.text() for m in self.matches]
        if self.verdict:
            parts.append(self.verdict.replace(":", " "))
        return " ".join(parts)


@dataclass(frozen=True)
class Chain:
    family: str
    table: str
    name: str
    hook: str | None
    policy: str | None
    rules: tuple[Rule, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass(frozen=True)
class Ruleset:
    chains: tuple[Chain, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f"{c.family} {c.table}" for c in self.chains))

    def base_chains(self, hook: str) -> list[Chain]:
        return [c for c in self.chains if c.hook == hook]

    def chain(self, family: str, table: str, name: str) -> Chain | None:
        for candidate in self.chains:
            if (candidate.family, candidate.table, candidate.name) == (family, table, name):
                return candidate
        return None

    def canonical(self, family: str, table: str) -> list[tuple[str, str | None, str | None, str]]:
        """The table's chains and rule texts, comparable between two rulesets."""
        return [
            (c.name, c.hook, c.policy, " | ".join(r.text() for r in c.rules))
            for c in self.chains
            if (c.family, c.table) == (family, table)
        ]


def _left(expression: Any) -> str:
    if isinstance(expression, dict):
        if "meta" in expression:
            return f"meta {expression['meta']['key']}"
        if "payload" in expression:
            payload = expression["payload"]
            return f"{payload.get('protocol', payload.get('base', '?'))} {payload['field']}"
        if "ct" in expression:
            return f"ct {expression['ct']['key']}"
        return json.dumps(expression, sort_keys=True)
    return str(expression)


def _values(expression: Any) -> frozenset[str]:
    if isinstance(expression, list):
        return frozenset(v for item in expression for v in _values(item))
    if isinstance(expression, dict):
        if "set" in expression:
            return _values(expression["set"])
        if "prefix" in expression:
            return frozenset({f"{expression['prefix']['addr']}/{expression['prefix']['len']}"})
        if "range" in expression:
            low, high = expression["range"]
            return frozenset({f"{low}-{high}"})
        return frozenset({json.dumps(expression, sort_keys=True)})
    return frozenset({str(expression)})


_VERDICTS = ("accept", "drop", "reject", "return", "continue")


def _rule(expressions: list[dict[str, Any]], position: int) -> Rule:
    matches, verdict = [], None
    for statement in expressions:
        if "match" in statement:
            match = statement["match"]
            matches.append(Match(_left(match["left"]), match["op"], _values(match["right"])))
        for name in _VERDICTS:
            if name in statement:
                verdict = name
        for name in ("jump", "goto"):
            if name in statement:
                verdict = f"{name}:{statement[name]['target']}"
    return Rule(tuple(matches), verdict, position)


def parse_nft(lines: list[str]) -> Ruleset | None:
    """`nft -j list ruleset` output; None when the snippet reported the file absent."""
    text = "\n".join(lines).strip()
    if text == "absent":
        return None
    if text.startswith("invalid"):
        raise ValueError("nft could not load it: " + text[len("invalid") :].strip())
    objects = json.loads(text)["nftables"] if text else []
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    for item in objects:
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            rules.setdefault(key, []).append(_rule(r.get("expr", []), len(rules.get(key, [])) + 1))
    return Ruleset(
        tuple(
            Chain(f, t, n, c.get("hook"), c.get("policy"), tuple(rules.get((f, t, n), [])))
            for (f, t, n), c in chains.items()
        )
    )


NFT_COMMAND = needs("nft", "nftables is not installed") + or_error("nft -j list ruleset")
# the ruleset the host would boot with, loaded into a throw-away network namespace
NFT_BOOT_COMMAND = (
    needs("nft", "nftables is not installed")
    + "[ -f /etc/nftables.conf ] || { echo absent; exit 0; }; "
    "unshare --net true 2>/dev/null || { echo '@@error'; "
    "echo 'cannot create a scratch network namespace to load /etc/nftables.conf'; exit 0; }; "
    "out=$(unshare --net sh -c 'nft -f /etc/nftables.conf >/dev/null && nft -j list ruleset'"
    " 2>&1) && printf '%s\\n' \"$out\" || { echo invalid; printf '%s\\n' \"$out\" | head -3; }"
)

register_section("system-nft", NFT_COMMAND, parse_nft)
register_section("system-nft-boot", NFT_BOOT_COMMAND, parse_nft)
