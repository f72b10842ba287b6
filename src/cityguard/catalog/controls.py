"""The control catalog (policies/controls), baselines, and the parameters a run uses.

A baseline selects controls and may set their parameters; a site may set parameters too but can
only switch a control off through a waiver. The resolved parameters go to both the playbooks
(what to enforce) and the checks (what to expect), so the two never disagree.

A control applies to a `scope` (a host, an information system of a disaster-recovery plan, an
eIDAS realm, an IPv6 segment, the whole site) and is proven by one `verifier`. Only controls of
scope host verified by host checks reach `harden` and `check`: `Selection.for_hosts()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from cityguard.catalog.params import ParamSchema, check_value
from cityguard.config.errors import ConfigError, ConfigProblem, problems_from_validation
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

CONTROL_ID = re.compile(r"^CG-[A-Z0-9]{2,8}-\d{3}$")
CHECK_ID = re.compile(r"^test_\w+::test_[\w*]+(\[[^\]]+\])?$")
UNMAPPED = "unmapped"

Scope = Literal["host", "system", "realm", "segment", "site"]
"""What a control applies to: a server; an information system of a disaster-recovery plan; an
eIDAS Keycloak realm (identity provider); an IPv6 network segment (prefix); the whole site."""

Verifier = Literal["host-checks", "drill", "eidas-rules", "ipv6-checks", "manual"]
"""What proves a control: the testinfra suites in checks/, a disaster-recovery drill, the eIDAS
profile rules, the IPv6 segment checks, or a person (evidence kept outside cityguard)."""

HOST_SCOPE: Scope = "host"
HOST_CHECKS: Verifier = "host-checks"

VERIFIER_SCOPES: dict[Verifier, tuple[Scope, ...]] = {
    "host-checks": ("host",),
    "drill": ("system", "site"),
    "eidas-rules": ("realm",),
    "ipv6-checks": ("segment", "site"),
    "manual": ("host", "system", "realm", "segment", "site"),
}
"""The scopes each verifier can prove; a pair outside this table would never be verified."""


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
    schema_: dict[str, ParamSchema] = Field(
        default_factory=dict,
        alias="schema",
        description="each parameter's type and limits (catalog/params.py)",
    )
    remediation: Remediation
    level: Literal[1, 2] = Field(
        default=1, description="1: every municipal server; 2: stricter, may cost convenience"
    )
    scope: Scope = Field(default=HOST_SCOPE, description="what the control applies to")
    verifier: Verifier = Field(
        default=HOST_CHECKS, validate_default=True, description="what proves the control"
    )
    checks: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="check ids (test_module::test_name[param]); * matches any text; "
        "only for verifier host-checks",
    )
    mappings: dict[str, list[str] | Literal["unmapped"]]

    @property
    def parameter_schema(self) -> dict[str, ParamSchema]:
        """Each parameter's schema, by parameter name."""
        return self.schema_

    @property
    def checked_on_hosts(self) -> bool:
        """A host control the checks/ suites prove: what `check` runs and `harden` enforces."""
        return self.scope == HOST_SCOPE and self.verifier == HOST_CHECKS

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not CONTROL_ID.match(value):
            raise ValueError(f"control id {value!r} is not of the form CG-AREA-NNN")
        return value

    @field_validator("verifier")
    @classmethod
    def _verifier_fits_scope(cls, value: Verifier, info: ValidationInfo) -> Verifier:
        scope = info.data.get("scope")  # absent when the scope itself was invalid
        if scope is not None and scope not in VERIFIER_SCOPES[value]:
            fitting = " or ".join(v for v, scopes in VERIFIER_SCOPES.items() if scope in scopes)
            if value == HOST_CHECKS:  # also when the verifier was left to its default
                raise ValueError(
                    f"scope {scope} needs verifier {fitting} (host-checks, the default, "
                    "proves host controls only)"
                )
            raise ValueError(
                f"verifier {value} cannot prove a control of scope {scope} "
                f"(scope {scope} needs {fitting})"
            )
        return value

    @field_validator("checks")
    @classmethod
    def _check_shape(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # scope or verifier absent: already reported as invalid, what was meant is unknown
        verifier = info.data.get("verifier") if "scope" in info.data else None
        if verifier == HOST_CHECKS and not value:
            raise ValueError("a control verified by host-checks names at least one check")
        if verifier not in (None, HOST_CHECKS) and value:
            raise ValueError(
                f"only host-checks controls name checks; verifier {verifier} runs none of them"
            )
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
    scopes: list[Scope] = Field(
        default_factory=lambda: [HOST_SCOPE],
        min_length=1,
        description="control scopes included: host (the default), system, realm, segment, site",
    )
    exclude: list[str] = Field(default_factory=list, description="control ids left out")
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """A baseline resolved against the catalog: its controls in id order (of its levels and
    scopes), and parameters."""

    name: str
    title: str
    controls: list[str]
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    scopes: tuple[Scope, ...] = (HOST_SCOPE,)


@dataclass(frozen=True)
class Catalog:
    controls: dict[str, Control]
    frameworks: dict[str, set[str]]  # framework -> valid mapping ids


@dataclass(frozen=True)
class Selection:
    """The controls a run covers and each one's resolved parameters.

    `parameters` holds every baseline control, also those outside `controls` (see select());
    `off_host` names the baseline controls that are not host controls (see for_hosts()).
    """

    baseline: str
    controls: list[Control]
    parameters: dict[str, dict[str, Any]]
    off_host: frozenset[str] = frozenset()

    @property
    def control_ids(self) -> list[str]:
        return [c.id for c in self.controls]

    def of(self, *, scope: Scope | None = None, verifier: Verifier | None = None) -> list[Control]:
        """The selected controls of one scope and/or one verifier, in selection order."""
        return [
            c
            for c in self.controls
            if (scope is None or c.scope == scope) and (verifier is None or c.verifier == verifier)
        ]

    @property
    def host_controls(self) -> list[Control]:
        """The controls `check` runs on every host and `harden` enforces: scope host, verified
        by the checks/ suites."""
        return [c for c in self.controls if c.checked_on_hosts]

    def for_hosts(self) -> Selection:
        """This selection narrowed to its host controls, for the host check run and harden.

        The parameters keep every baseline host control, chosen or not, and no other: a DR
        plan's or a realm's settings never reach a host. A selection without host controls is
        refused, never widened.
        """
        controls = self.host_controls
        if not controls:
            raise ConfigError(
                [
                    ConfigProblem(
                        "",
                        None,
                        "controls",
                        f"nothing to run on hosts: baseline {self.baseline} selects no control "
                        "of scope host verified by host-checks here",
                    )
                ]
            )
        others = self.off_host | {c.id for c in self.controls if not c.checked_on_hosts}
        parameters = {cid: p for cid, p in self.parameters.items() if cid not in others}
        return Selection(self.baseline, controls, parameters)


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
            problems += _default_problems(doc, where, control)
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


def _default_problems(
    doc: YamlDocument, where: tuple[str | int, ...], control: Control
) -> list[ConfigProblem]:
    """Every parameter has a schema and a default that fits it; every schema a parameter."""
    problems = []
    schema = control.parameter_schema
    for name in control.parameters:
        if name not in schema:
            problems.append(
                doc.problem((*where, "parameters", name), "parameter has no entry under schema")
            )
    for name in schema:
        if name not in control.parameters:
            problems.append(
                doc.problem((*where, "schema", name), "schema entry for no parameter (no default)")
            )
    for name, value in control.parameters.items():
        if name in schema:
            for sub, message in check_value(value, schema[name]):
                problems.append(doc.problem((*where, "parameters", name, *sub), message))
    return problems


def override_problems(
    control: Control, overrides: dict[str, Any]
) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with overrides of ``control``'s parameters, by path below the control.

    An override is merged into the defaults, so records in it may be partial; an unknown
    parameter name is an error, because it would silently change nothing.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    schema = control.parameter_schema
    for name, value in overrides.items():
        if name not in schema:
            known = ", ".join(schema) or "none"
            message = f"unknown parameter of {control.id} (its parameters: {known})"
            problems.append(((name,), message))
            continue
        found = check_value(value, schema[name], partial=True)
        problems += [((name, *sub), message) for sub, message in found]
    return problems


def load_baseline(policies: Path, name: str, catalog: Catalog) -> Baseline:
    doc = load_yaml_file(policies / "baselines" / f"{name}.yml")
    spec: _BaselineFile = _validated(doc, _BaselineFile)
    problems = [
        doc.problem(("exclude", i), f"unknown control id {cid}")
        for i, cid in enumerate(spec.exclude)
        if cid not in catalog.controls
    ]
    controls = sorted(
        cid
        for cid, control in catalog.controls.items()
        if control.level in spec.levels and control.scope in spec.scopes and cid not in spec.exclude
    )
    for cid, overrides in spec.parameters.items():
        if cid not in catalog.controls:
            problems.append(doc.problem(("parameters", cid), f"unknown control id {cid}"))
        elif cid not in controls:
            problems.append(
                doc.problem(("parameters", cid), f"{cid} is not selected by this baseline")
            )
        else:
            problems += [
                doc.problem(("parameters", cid, *sub), message)
                for sub, message in override_problems(catalog.controls[cid], overrides)
            ]
    if problems:
        raise ConfigError(problems)
    return Baseline(spec.name, spec.title, controls, spec.parameters, tuple(spec.scopes))


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
    off_host = frozenset(c for c in baseline.controls if not catalog.controls[c].checked_on_hosts)
    return Selection(baseline.name, [catalog.controls[c] for c in chosen], parameters, off_host)


def expand_checks(patterns: list[str], check_ids: Iterable[str]) -> set[str]:
    """The check ids a control's `checks` entries name; only `*` is special (any text)."""
    ids = list(check_ids)
    matched: set[str] = set()
    for pattern in patterns:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        matched.update(c for c in ids if regex.fullmatch(c))
    return matched
