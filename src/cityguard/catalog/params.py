"""The typed schema of a control's parameters, and checking values against it.

A control declares its parameters' defaults under ``parameters`` and their types under
``schema``, one entry per parameter, in a small notation made for YAML (policies/README.md):

    schema:
      max_auth_tries: {type: int, min: 1, max: 10, description: attempts per connection}
      log_level: {type: str, enum: [INFO, VERBOSE]}
      ciphers: {type: list, items: {type: str, pattern: '[a-z0-9@.-]+'}, min_items: 1}
      settings: {type: map, keys: {type: str, pattern: '[a-z0-9_.]+'}, values: {type: str}}
      files: {type: map, values: {type: record, fields: {mode: {type: str}, ...}}}

Types: ``int`` (``min``, ``max``, ``enum``), ``str`` (``enum``, ``pattern``, ``min_length``,
``max_length``), ``bool``, ``list`` (``items``, ``min_items``, ``max_items``), ``map`` (free
keys: ``keys``, ``values``) and ``record`` (fixed ``fields``, each required unless it says
``optional: true``). Every parameter is checked when a site loads, in the control's defaults,
the baseline's and the site's overrides: a string where a number belongs or a value out of range
is a located line before Ansible ever sees it, not a failed play.

An override is partial (it is merged into the defaults key by key), so a record in an override
may leave fields out; every value it does give is checked in full.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ParamType = Literal["int", "str", "bool", "list", "map", "record"]

#: Keys each type accepts besides type, description and optional.
_ALLOWED: dict[str, set[str]] = {
    "int": {"min", "max", "enum"},
    "str": {"enum", "pattern", "min_length", "max_length"},
    "bool": set(),
    "list": {"items", "min_items", "max_items"},
    "map": {"keys", "values"},
    "record": {"fields"},
}
_COMMON = {"type", "description", "optional"}


class ParamSchema(BaseModel):
    """One parameter's type and limits (the notation in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ParamType
    description: str | None = None
    optional: bool = False
    min: int | None = None
    max: int | None = None
    enum: list[str | int] | None = None
    pattern: str | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    items: ParamSchema | None = None
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=0)
    keys: ParamSchema | None = None
    values: ParamSchema | None = None
    fields: dict[str, ParamSchema] | None = None

    @model_validator(mode="after")
    def _fits_type(self) -> ParamSchema:
        given = {k for k in type(self).model_fields if k not in _COMMON and getattr(self, k)}
        given |= {k for k in ("min", "max") if getattr(self, k) is not None}
        wrong = sorted(given - _ALLOWED[self.type])
        if wrong:
            raise ValueError(
                f"type {self.type} takes no {', '.join(wrong)} "
                f"(it takes: {', '.join(sorted(_ALLOWED[self.type])) or 'nothing more'})"
            )
        if self.type == "list" and self.items is None:
            raise ValueError("type list needs items (the schema of each item)")
        if self.type == "map" and self.values is None:
            raise ValueError("type map needs values (the schema of each value)")
        if self.type == "record" and self.fields is None:
            raise ValueError("type record needs fields (may be {}: a mapping that takes none)")
        if self.keys is not None and self.keys.type != "str":
            raise ValueError("map keys are strings: keys must be of type str")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        return self


Path = tuple[str | int, ...]
Problem = tuple[Path, str]


def check_value(value: Any, schema: ParamSchema, *, partial: bool = False) -> list[Problem]:
    """Every way ``value`` breaks ``schema``, as (path below the parameter, message).

    ``partial``: an override merged into defaults, whose records may leave fields out.
    Messages show the value only for numbers and booleans; strings are named by position, in
    case a secret was typed where it does not belong.
    """
    return list(_check(value, schema, (), partial))


def _check(value: Any, schema: ParamSchema, path: Path, partial: bool) -> list[Problem]:
    kind = schema.type
    if kind == "bool":
        return [] if isinstance(value, bool) else [(path, f"must be true or false, {_got(value)}")]
    if kind == "int":
        return _int(value, schema, path)
    if kind == "str":
        return _str(value, schema, path)
    if kind == "list":
        return _list(value, schema, path, partial)
    if kind == "map":
        return _map(value, schema, path, partial)
    return _record(value, schema, path, partial)


def _got(value: Any) -> str:
    if value is None:
        return "got nothing (null)"
    if isinstance(value, bool):
        return f"got {str(value).lower()}"
    if isinstance(value, int | float):
        return f"got {value}"
    names: dict[type, str] = {str: "text", list: "a list", dict: "a mapping"}
    return f"got {names.get(type(value), type(value).__name__)}"


def _int(value: Any, schema: ParamSchema, path: Path) -> list[Problem]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [(path, f"must be a whole number, {_got(value)}")]
    if schema.enum is not None and value not in schema.enum:
        return [(path, f"must be one of {', '.join(map(str, schema.enum))}, got {value}")]
    if schema.min is not None and value < schema.min:
        return [(path, f"must be at least {schema.min}, got {value}")]
    if schema.max is not None and value > schema.max:
        return [(path, f"must be at most {schema.max}, got {value}")]
    return []


def _str(value: Any, schema: ParamSchema, path: Path) -> list[Problem]:
    if not isinstance(value, str):
        return [(path, f"must be text, {_got(value)}")]
    if schema.enum is not None and value not in schema.enum:
        return [(path, f"must be one of {', '.join(map(str, schema.enum))}")]
    if schema.min_length is not None and len(value) < schema.min_length:
        return [(path, f"must be at least {schema.min_length} characters long")]
    if schema.max_length is not None and len(value) > schema.max_length:
        return [(path, f"must be at most {schema.max_length} characters long")]
    if schema.pattern is not None and not re.fullmatch(schema.pattern, value):
        return [(path, f"must match the pattern {schema.pattern}")]
    return []


def _list(value: Any, schema: ParamSchema, path: Path, partial: bool) -> list[Problem]:
    if not isinstance(value, list):
        return [(path, f"must be a list, {_got(value)}")]
    if schema.min_items is not None and len(value) < schema.min_items:
        return [(path, f"must have at least {schema.min_items} items, got {len(value)}")]
    if schema.max_items is not None and len(value) > schema.max_items:
        return [(path, f"must have at most {schema.max_items} items, got {len(value)}")]
    assert schema.items is not None  # the schema's validator requires it
    problems: list[Problem] = []
    for index, item in enumerate(value):
        problems += _check(item, schema.items, (*path, index), partial)
    return problems


def _map(value: Any, schema: ParamSchema, path: Path, partial: bool) -> list[Problem]:
    if not isinstance(value, dict):
        return [(path, f"must be a mapping, {_got(value)}")]
    assert schema.values is not None  # the schema's validator requires it
    problems: list[Problem] = []
    for key, item in value.items():
        where = (*path, str(key))
        if schema.keys is not None:
            problems += [(where, f"key {m}") for _, m in _check(key, schema.keys, where, partial)]
        problems += _check(item, schema.values, where, partial)
    return problems


def _record(value: Any, schema: ParamSchema, path: Path, partial: bool) -> list[Problem]:
    if not isinstance(value, dict):
        return [(path, f"must be a mapping, {_got(value)}")]
    fields = schema.fields or {}
    problems: list[Problem] = []
    for key, item in value.items():
        if key not in fields:
            allowed = ", ".join(fields)
            problems.append(((*path, str(key)), f"unknown key (allowed: {allowed})"))
        else:
            problems += _check(item, fields[key], (*path, key), partial)
    if not partial:
        for name, field in fields.items():
            if name not in value and not field.optional:
                problems.append(((*path, name), "required key is missing"))
    return problems


def describe(schema: ParamSchema) -> str:
    """The schema in a few words with every limit, for the generated control reference."""
    kind = schema.type
    if kind == "int":
        if schema.enum is not None:
            return "whole number, one of " + ", ".join(map(str, schema.enum))
        return "whole number" + _range(schema.min, schema.max)
    if kind == "str":
        if schema.enum is not None:
            return "one of " + ", ".join(f"`{v}`" for v in schema.enum)
        text = "text"
        if schema.min_length is not None or schema.max_length is not None:
            text += f" of{_range(schema.min_length, schema.max_length)} characters"
        return f"{text} matching `{schema.pattern}`" if schema.pattern else text
    if kind == "bool":
        return "true or false"
    if kind == "list":
        assert schema.items is not None
        low, high = schema.min_items, schema.max_items
        count = ""
        if low is not None and high is None:
            count = f", {low} or more items"
        elif high is not None:
            count = f",{_range(low, high)} items"
        return f"list of ({describe(schema.items)}){count}"
    if kind == "map":
        assert schema.values is not None
        keys = f"({describe(schema.keys)})" if schema.keys is not None else "name"
        return f"mapping of {keys} to ({describe(schema.values)})"
    fields = schema.fields or {}
    inner = "; ".join(
        f"{name}{'?' if field.optional else ''}: {describe(field)}"
        for name, field in fields.items()
    )
    return "{" + inner + "}"


def _range(low: int | None, high: int | None) -> str:
    """The limits as words after a space ("1..10", "at least 1", "at most 10"), or nothing."""
    if low is not None and high is not None:
        return f" {low}..{high}"
    if low is not None:
        return f" at least {low}"
    if high is not None:
        return f" at most {high}"
    return ""
