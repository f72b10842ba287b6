"""The control catalog (policies/controls), baselines, and the parameters a run uses.

A baseline selects controls and may set their parameters; a site may set parameters too but can
only switch a control off through a waiver. The resolved parameters go to both the playbooks
(what to enforce) and the checks (what to expect), so the two never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cityguard.config.errors import ConfigError, ConfigProblem, problems_from_validation
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

CONTROL_ID = re.compile(r"^CG-[A-Z0-9]{2,8}-\d{3}$")
CHECK_ID = re.compile(r"^test_\w+::test_[\w*]+(\[[^\]]+\])?$")
UNMAPPED = "unmapped"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Remediation(_Strict):
    role: str = Field(description="Ansible role that enforces the control, or 'manual'")
    tags: list[str] = Field(default_factory=list, description="tags selecting its tasks")


class Control(_Strict):
    id: str = Field(description="stable id, e.g. CG-SSH-001")
    title: str = Field(description="the requirement, as an auditor would read it")
    rationale: str
    severity: Literal["low", "medium", "high", "critical"]
    parameters: dict[str, Any] = Field(default_factory=dict)
    remediation: Remediation
    level: Literal[1, 2] = Field(
        default=1, description="1: every municipal server; 2: stricter, may cost convenience"
    )
    checks: list[str] = Field(
        min_length=1, description="check ids (test_module::test_name[param]); * matches any text"
    )
    mappings: dict[str, list[str] | Literal["unmapped"]]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not CONTROL_ID.match(value):
            raise ValueError(f"control id {value!r} is not of the form CG-AREA-NNN")
        return value

    @field_validator("checks")
    @classmethod
    def _check_shape(cls, value: list[str]) -> list[str]:
        for check in value:
            if not CHECK_ID.match(check):
                raise ValueError(f"check id {check!r} is not of the form test_file::test_name")
        return value


class _ControlFile(_Strict):
    controls: list[Control]


class _BaselineFile(_Strict):
    name: str
    title: str
    description: str = ""
    levels: list[Literal[1, 2]] = Field(
        min_length=1, description="control levels included: 1 every server, 2 stricter"
    )
    exclude: list[str] = Field(default_factory=list, description="control ids left out")
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """A baseline resolved against the catalog: its controls in id order, and parameters."""

    name: str
    title: str
    controls: list[str]
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    controls: dict[str, Control]
    frameworks: dict[str, set[str]]  # framework -> valid mapping ids


@dataclass(frozen=True)
class Selection:
    """The controls a run covers and each one's resolved parameters."""

    baseline: str
    controls: list[Control]
    parameters: dict[str, dict[str, Any]]

    @property
    def control_ids(self) -> list[str]:
        return [c.id for c in self.controls]


def _validated(doc: YamlDocument, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(doc.data)
    except ValidationError as error:
        raise ConfigError(problems_from_validation(error, doc.file, doc.lines, model)) from None


def load_frameworks(policies: Path) -> dict[str, set[str]]:
    doc = load_yaml_file(policies / "frameworks" / "frameworks.yml")
    frameworks: dict[str, set[str]] = {}
    for name, spec in doc.data.items():
        if "ids_file" in spec:
            ids_file = policies / "frameworks" / spec["ids_file"]
            try:
                text = ids_file.read_text()
            except OSError as error:
                raise ConfigError(
                    [doc.problem((name, "ids_file"), f"cannot read {ids_file}: {error.strerror}")]
                ) from None
            frameworks[name] = {ln for ln in text.splitlines() if ln and not ln.startswith("#")}
        else:
            frameworks[name] = set(map(str, spec.get("ids") or {}))
    return frameworks


def load_catalog(policies: Path) -> Catalog:
    """Every control in policies/controls/*.yml, with all problems of all files at once."""
    frameworks = load_frameworks(policies)
    controls: dict[str, Control] = {}
    problems: list[ConfigProblem] = []
    for path in sorted((policies / "controls").glob("*.yml")):
        try:
            doc = load_yaml_file(path)
            parsed: _ControlFile = _validated(doc, _ControlFile)
        except ConfigError as error:
            problems += error.problems
            continue
        for index, control in enumerate(parsed.controls):
            where = ("controls", index)
            if control.id in controls:
                problems.append(doc.problem((*where, "id"), f"duplicate control id {control.id}"))
            controls[control.id] = control
            problems += _mapping_problems(doc, where, control, frameworks)
    if problems:
        raise ConfigError(problems)
    return Catalog(controls, frameworks)


def _mapping_problems(
    doc: YamlDocument,
    where: tuple[str | int, ...],
    control: Control,
    frameworks: dict[str, set[str]],
) -> list[ConfigProblem]:
    problems = []
    for framework in sorted(set(frameworks) - set(control.mappings)):
        problems.append(
            doc.problem(
                (*where, "mappings"), f"no mapping for {framework} (write 'unmapped' if none)"
            )
        )
    for framework, ids in control.mappings.items():
        path = (*where, "mappings", framework)
        if framework not in frameworks:
            problems.append(
                doc.problem(path, f"unknown framework (known: {', '.join(sorted(frameworks))})")
            )
        elif ids != UNMAPPED:
            problems += [
                doc.problem(path, f"{framework} has no id {i!r}")
                for i in ids
                if i not in frameworks[framework]
            ]
    return problems


def load_baseline(policies: Path, name: str, catalog: Catalog) -> Baseline:
    doc = load_yaml_file(policies / "baselines" / f"{name}.yml")
    spec: _BaselineFile = _validated(doc, _BaselineFile)
    problems = [
        doc.problem(("exclude", i), f"unknown control id {cid}")
        for i, cid in enumerate(spec.exclude)
        if cid not in catalog.controls
    ]
    problems += [
        doc.problem(("parameters", cid), f"unknown control id {cid}")
        for cid in spec.parameters
        if cid not in catalog.controls
    ]
    if problems:
        raise ConfigError(problems)
    controls = sorted(
        cid
        for cid, control in catalog.controls.items()
        if control.level in spec.levels and cid not in spec.exclude
    )
    return Baseline(spec.name, spec.title, controls, spec.parameters)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override nested mappings key by key: a site changing one sysctl keeps the others."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def select(
    catalog: Catalog,
    baseline: Baseline,
    site_parameters: dict[str, dict[str, Any]],
    only: list[str] | None = None,
) -> Selection:
    """Resolve parameters (control default < baseline < site) for the baseline's controls.

    `only` narrows the run to some controls (e.g. --controls); an id outside the baseline is a
    usage error listed with the others.
    """
    chosen = baseline.controls
    if only is not None:
        if not only:  # e.g. --controls "": an empty selection never widens to every control
            raise ConfigError([ConfigProblem("", None, "--controls", "selects no control")])
        unknown = [cid for cid in only if cid not in baseline.controls]
        if unknown:
            raise ConfigError(
                [
                    ConfigProblem("", None, "--controls", f"not in baseline {baseline.name}: {cid}")
                    for cid in unknown
                ]
            )
        chosen = [cid for cid in baseline.controls if cid in only]
    # parameters of every baseline control, not only the chosen ones: a role that builds one
    # file from several controls (a firewall ruleset) must not lose the others' settings
    parameters = {}
    for cid in baseline.controls:
        merged = dict(catalog.controls[cid].parameters)
        for layer in (baseline.parameters.get(cid, {}), site_parameters.get(cid, {})):
            merged = deep_merge(merged, layer)
        parameters[cid] = merged
    return Selection(baseline.name, [catalog.controls[c] for c in chosen], parameters)


def expand_checks(patterns: list[str], check_ids: Iterable[str]) -> set[str]:
    """The check ids a control's `checks` entries name; only `*` is special (any text)."""
    ids = list(check_ids)
    matched: set[str] = set()
    for pattern in patterns:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        matched.update(c for c in ids if regex.fullmatch(c))
    return matched
