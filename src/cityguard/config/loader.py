"""``load_site``: read a site file, validate it in two passes, resolve it into a ``Site``.

Pass one is the schema (the version first, then shape and types, plus the no-inline-secrets
rule); pass two checks references to other files, including each area section's own
``check`` and the rules a caller adds (the catalog's: parameters and waivers fit the baseline).
Both passes always run and every problem is reported in one go: a typo in ``site.title`` must
not hide a missing inventory. When pass one found problems, pass two checks only the keys that
passed it (read from the raw data), since what a broken key meant is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cityguard.config import crossfile
from cityguard.config.errors import (
    ConfigError,
    ConfigProblem,
    KeyPath,
    problems_from_validation,
)
from cityguard.config.paths import content_root, state_dir_for, state_dir_problems
from cityguard.config.scope import SectionScope
from cityguard.config.sections import SectionSpec, check_unique, registered_sections
from cityguard.config.site import (
    BASELINE_NAME,
    SITE_FILE_VERSION,
    SUPPORTED_VERSIONS,
    Site,
    SiteFile,
    locate,
    make_secret_ref,
    secret_key,
    site_file_model,
)
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

if TYPE_CHECKING:
    from cityguard.config.inventory import Inventory

SECRET_MESSAGE = (
    "secrets must not be written in the site file: refer to them with a *_env, *_file or "
    "*_credential key"
)
_SECRET_KEYS = {"password", "passwd", "secret", "dsn"}
_SECRET_SUFFIXES = ("_password", "_passwd", "_secret", "_dsn")

SiteRule = Callable[[SiteFile, YamlDocument, Path], list[ConfigProblem]]
"""A check a caller adds to the logical pass: (validated file, its YAML, content dir) → problems."""


def load_site(
    path: Path,
    content_dir: Path | None = None,
    *,
    sections: Sequence[SectionSpec] | None = None,
    rules: Sequence[SiteRule] = (),
) -> Site:
    """Load and validate the site file at ``path``; raises ConfigError listing every problem.

    ``content_dir`` is the project root holding ``policies/``; by default it is found by
    ``paths.content_root()``. ``sections`` are the area sections the file may have; by default
    every section registered in ``cityguard.config.sections`` (the command line registers all).
    ``rules`` run in the logical pass once the file has the right shape.
    """
    specs = check_unique(registered_sections() if sections is None else sections)
    doc = load_yaml_file(path, str(path))
    model, problems = _schema_pass(doc, site_file_model(specs))
    content = content_dir if content_dir is not None else content_root()
    raw = _RawKeys(doc, problems)
    inventory = None
    relative = model.inventory if model is not None else raw.text("inventory")
    if relative is not None:
        found, inventory = crossfile.check_inventory(doc, path, relative)
        problems += found
    baseline = model.baseline if model is not None else raw.text("baseline")
    if baseline is not None and BASELINE_NAME.match(baseline):
        problems += crossfile.check_baseline(doc, content, baseline)
    parameters = model.parameters if model is not None else raw.mapping("parameters")
    if parameters is not None:
        problems += crossfile.check_parameters(doc, content, parameters)
    if model is not None:
        if inventory is not None:
            problems += crossfile.check_waivers(doc, content, model.waivers, inventory)
        for key, section in model.sections().items():
            problems += section.check(SectionScope(doc, key, path, content, inventory))
        for rule in rules:
            problems += rule(model, doc, content)
        problems += state_dir_problems(state_dir_for(model.site.name))
    if problems or model is None or inventory is None:
        raise ConfigError(_ordered(problems, doc.file))
    return _resolve(model, doc, path, content, inventory)


class _RawKeys:
    """Top-level values of a file that failed the schema, for the keys that passed it."""

    def __init__(self, doc: YamlDocument, problems: list[ConfigProblem]) -> None:
        self._data = doc.data if isinstance(doc.data, dict) else {}
        self._bad = {p.key_path.split(".")[0].split("[")[0] for p in problems}

    def text(self, key: str) -> str | None:
        value = self._data.get(key)
        return value if isinstance(value, str) and value and key not in self._bad else None

    def mapping(self, key: str) -> dict[str, dict[str, Any]] | None:
        value = self._data.get(key)
        if key in self._bad or not isinstance(value, dict):
            return None
        return value


def _schema_pass(
    doc: YamlDocument, model_type: type[SiteFile]
) -> tuple[SiteFile | None, list[ConfigProblem]]:
    """The validated model (None when the shape is wrong) and the problems found."""
    secrets = list(_secret_problems(doc, doc.data, ()))
    secret_paths = {problem.key_path for problem in secrets}
    problems: list[ConfigProblem] = list(secrets)
    version = _version_problems(doc)
    if version:
        # A file of another version is not checked further: its keys may mean other things.
        raise ConfigError(_ordered(version + problems, doc.file))
    try:
        model = model_type.model_validate(doc.data)
    except ValidationError as exc:
        found = problems_from_validation(exc, doc.file, doc.lines, model_type)
        # An inline secret is also an unknown key; say the more useful thing once.
        problems += [p for p in found if p.key_path not in secret_paths]
        return None, problems
    return model, problems


def _version_problems(doc: YamlDocument) -> list[ConfigProblem]:
    """``version:`` must be there and be one this cityguard reads."""
    if not isinstance(doc.data, dict):
        return []  # the schema pass says the document is not a mapping
    readable = _versions_read()
    if "version" not in doc.data:
        return [
            doc.problem(
                ("version",),
                f"required key is missing: this cityguard reads {readable} "
                f"(add 'version: {SITE_FILE_VERSION}' at the top)",
            )
        ]
    value = doc.data["version"]
    if isinstance(value, int) and not isinstance(value, bool):
        if value in SUPPORTED_VERSIONS:
            return []
        message = f"unsupported site file version {value}: this cityguard reads {readable}"
    else:
        message = f"must be a whole number: this cityguard reads {readable}"
    return [doc.problem(("version",), message)]


def _versions_read() -> str:
    if len(SUPPORTED_VERSIONS) == 1:
        return f"site file version {SUPPORTED_VERSIONS[0]}"
    return "site file versions " + ", ".join(str(v) for v in SUPPORTED_VERSIONS)


def _secret_problems(doc: YamlDocument, data: Any, path: KeyPath) -> Iterator[ConfigProblem]:
    """Flag password-like keys anywhere, including free-form ``parameters`` mappings."""
    if isinstance(data, dict):
        for key, value in data.items():
            key_path = (*path, key if isinstance(key, str) else str(key))
            name = str(key).lower()
            if name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES):
                yield doc.problem(key_path, SECRET_MESSAGE)
            else:
                yield from _secret_problems(doc, value, key_path)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _secret_problems(doc, item, (*path, index))


def _ordered(problems: list[ConfigProblem], first_file: str) -> list[ConfigProblem]:
    """Site file first, then other files in the order met; by line within each file.

    Reading problems top to bottom in the order of the file makes fixing them mechanical.
    """
    files = {first_file: 0}
    unique = list(dict.fromkeys(problems))  # two rules may read the same broken file
    for problem in unique:
        files.setdefault(problem.file, len(files))
    return sorted(
        unique,
        key=lambda p: (files[p.file], p.line is None, p.line or 0),
    )


def _resolve(
    model: SiteFile, doc: YamlDocument, path: Path, content: Path, inventory: Inventory
) -> Site:
    site_path = path.resolve()
    root = site_path.parent
    evidence_ref = None
    if model.evidence is not None:
        key = secret_key(model.evidence, "dsn")
        if key is not None:
            origin = locate(doc.file, doc.lines, ("evidence", key))
            evidence_ref = make_secret_ref(model.evidence, "dsn", root=root, origin=origin)
    return Site(
        version=model.version,
        name=model.site.name,
        title=model.site.title,
        contact=model.site.contact,
        path=site_path,
        root=root,
        inventory_path=root / model.inventory,
        baseline=model.baseline,
        baseline_path=(content / "policies" / "baselines" / f"{model.baseline}.yml").resolve(),
        parameters={key: dict(value) for key, value in model.parameters.items()},
        evidence_dsn_ref=evidence_ref,
        waivers=tuple(model.waivers),
        inventory=inventory,
        state_dir=state_dir_for(model.site.name),
        content_dir=content.resolve(),
        sections=MappingProxyType(model.sections()),
        display=doc.file,
        lines=MappingProxyType(dict(doc.lines)),
    )
