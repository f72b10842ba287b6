"""The difference between desired and live objects (pure): what apply would change.

Per object: create (all its fields), update (each differing field with its old and new value)
or delete (an identity-provider mapper of the managed provider that the realm file does not
name: a stray mapper can overwrite an imported attribute). Only desired fields are compared, so
what Keycloak adds by itself is no drift. Secrets compare by value and render as ``(secret)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cityguard.eidas.desired import Desired, Fields, Secret, normalize_attribute

SORTED_LISTS = frozenset({"redirectUris", "enabledEventTypes"})
SECRET_SHOWN = "(secret)"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    @property
    def secret(self) -> bool:
        return isinstance(self.new, Secret) or isinstance(self.old, Secret)

    def render(self) -> str:
        if self.secret:
            was = "(none)" if self.old in (None, "") else SECRET_SHOWN
            return f"{self.field}: {was} -> {SECRET_SHOWN}"
        return f"{self.field}: {show(self.old)} -> {show(self.new)}"


@dataclass(frozen=True)
class ObjectChange:
    key: str
    action: Action
    fields: tuple[FieldChange, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.key.partition(":")[0]

    @property
    def name(self) -> str:
        return self.key.partition(":")[2] or self.key

    def diff(self) -> str:
        """The change as text, for people and for the evidence (no secret in it)."""
        head = {"create": "+", "update": "~", "delete": "-"}[self.action]
        lines = [f"{head} {self.key}"]
        lines += [f"    {change.render()}" for change in self.fields]
        return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    realm: str
    changes: tuple[ObjectChange, ...]

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self) -> int:
        return len(self.changes)


def make_plan(desired: Desired, live: dict[str, Fields]) -> Plan:
    """Compare desired objects with the live ones (same keys and field shape)."""
    changes: list[ObjectChange] = []
    for key, wanted in desired.objects.items():
        current = live.get(key)
        if current is None:
            fields = tuple(FieldChange(name, None, value) for name, value in wanted.items())
            changes.append(ObjectChange(key, Action.CREATE, fields))
            continue
        differing = tuple(
            FieldChange(name, comparable(name, current.get(name), value), value)
            for name, value in wanted.items()
            if not same(name, current.get(name), value)
        )
        if differing:
            changes.append(ObjectChange(key, Action.UPDATE, differing))
    managed_idps = {key.partition(":")[2] for key in desired.objects if key.startswith("idp:")}
    for key in live:
        kind, _, name = key.partition(":")
        managed = kind == "idp-mapper" and name.partition("/")[0] in managed_idps
        if managed and key not in desired.objects:
            changes.append(ObjectChange(key, Action.DELETE))
    return Plan(desired.realm, tuple(changes))


def comparable(name: str, live: Any, wanted: Any) -> Any:
    """The live value in the shape of the desired one (sorted lists, managed keys only)."""
    if name.startswith("attributes.") and isinstance(wanted, dict) and isinstance(live, dict):
        return normalize_attribute(live, wanted)
    if name in SORTED_LISTS and isinstance(live, list):
        return sorted(live)
    return live


def same(name: str, live: Any, wanted: Any) -> bool:
    if isinstance(wanted, Secret):
        return bool(wanted == live)
    live = comparable(name, live, wanted)
    if wanted in ("", None) and live in ("", None):
        return True  # Keycloak drops empty config values
    if isinstance(wanted, dict) and isinstance(live, dict):
        return _canonical(live) == _canonical(wanted)
    result: bool = live == wanted
    return result


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return json.dumps(value) if len(value) <= 80 else json.dumps(value[:77] + "...")
    return json.dumps(value, sort_keys=True, default=str)
