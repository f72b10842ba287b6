"""The control reference (docs/controls.md), generated from the catalog so it never drifts.

Every control with its id, title, scope, verifier, level, severity, remediation, each parameter
with its type and limits (from its `schema:` entry, `params.describe`) and default, and its
framework mappings. `cityguard docs controls --output docs/controls.md` writes it; a unit test
fails when the file in the repository differs from what the catalog generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cityguard.catalog.controls import UNMAPPED, Catalog, Control, load_catalog
from cityguard.catalog.params import describe
from cityguard.config.yaml_lines import load_yaml_file

#: The command that regenerates the file, as the file itself states it.
REGENERATE = "cityguard docs controls --output docs/controls.md"
#: A default longer than this (as JSON) is shown as YAML below the control's parameter table.
INLINE_DEFAULT = 60


def framework_titles(policies: Path) -> dict[str, str]:
    """Each framework's key and title, in the order of frameworks/frameworks.yml."""
    data = load_yaml_file(policies / "frameworks" / "frameworks.yml").data
    return {str(key): str(spec.get("title", key)) for key, spec in data.items()}


def controls_markdown(catalog: Catalog, frameworks: dict[str, str]) -> str:
    """The whole reference as Markdown; the same catalog always gives the same text."""
    controls = [catalog.controls[cid] for cid in sorted(catalog.controls)]
    lines = [
        "# Control reference",
        "",
        f"Generated from `policies/` by `{REGENERATE}`;",
        "do not edit it by hand (a unit test fails when it is not current). How a control is",
        "written, and what scope, verifier, level and the parameter types mean:",
        "`policies/README.md`.",
        "",
        f"{len(controls)} controls. Frameworks the mappings refer to:",
        "",
        "| key | framework |",
        "| --- | --- |",
        *(f"| `{key}` | {_cell(title)} |" for key, title in frameworks.items()),
        "",
        "| id | title | scope | verifier | level | severity |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in controls:
        anchor = c.id.lower()
        lines.append(
            f"| [{c.id}](#{anchor}) | {_cell(c.title)} | {c.scope} | {c.verifier} | "
            f"{c.level} | {c.severity} |"
        )
    for control in controls:
        lines += ["", *_control_section(control, frameworks)]
    return "\n".join(lines) + "\n"


def generate(policies: Path) -> str:
    """The reference of the catalog under `policies` (problems raise ConfigError)."""
    return controls_markdown(load_catalog(policies), framework_titles(policies))


def _control_section(control: Control, frameworks: dict[str, str]) -> list[str]:
    remediation = control.remediation.role
    if control.remediation.tags:
        remediation += f" (tags {', '.join(control.remediation.tags)})"
    lines = [
        f"## {control.id}",
        "",
        f"**{_flat(control.title)}**",
        "",
        f"scope {control.scope} · verifier {control.verifier} · level {control.level} · "
        f"severity {control.severity} · remediation {remediation}",
        "",
        _flat(control.rationale),
        "",
    ]
    lines += _parameters(control)
    lines += ["", "| framework | ids |", "| --- | --- |"]
    for key in [*frameworks, *sorted(set(control.mappings) - set(frameworks))]:
        ids = control.mappings.get(key, UNMAPPED)
        shown = UNMAPPED if ids == UNMAPPED else ", ".join(ids)
        lines.append(f"| `{key}` | {_cell(shown)} |")
    return lines


def _parameters(control: Control) -> list[str]:
    schema = control.parameter_schema
    if not schema:
        return ["No parameters."]
    lines = ["| parameter | type and limits | default | description |", "| --- | --- | --- | --- |"]
    long_defaults: dict[str, Any] = {}
    for name, entry in schema.items():
        default = control.parameters.get(name)
        text = json.dumps(default, ensure_ascii=False)
        if len(text) > INLINE_DEFAULT:
            long_defaults[name] = default
            text = "below"
        else:
            text = f"`{text}`"
        lines.append(
            f"| `{name}` | {_cell(describe(entry))} | {_cell(text)} | "
            f"{_cell(entry.description or '')} |"
        )
    for name, default in long_defaults.items():
        lines += ["", f"Default of `{name}`:", "", "```json"]
        lines += json.dumps(default, indent=2, ensure_ascii=False).splitlines()
        lines.append("```")
    return lines


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, its pipes escaped."""
    return _flat(text).replace("|", "\\|")
