"""``load_site``: read a site file, validate it in two passes, resolve it into a ``Site``.

Pass one is the schema (shape and types, plus the no-inline-secrets rule); pass two checks
references to other files. Pass two only runs when pass one is clean, because it relies on the
validated types; when it runs, all its problems are reported together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cityguard.config import crossfile
from cityguard.config.errors import (
    ConfigError,
    ConfigProblem,
    KeyPath,
    problems_from_validation,
)
from cityguard.config.paths import content_root, state_dir_for
from cityguard.config.site import Site, SiteFile
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

if TYPE_CHECKING:
    from cityguard.config.inventory import Inventory

SECRET_MESSAGE = (
    "secrets must not be written in the site file: use admin_password_env or admin_password_file"
)
_SECRET_KEYS = {"password", "passwd", "secret"}
_SECRET_SUFFIXES = ("_password", "_passwd", "_secret")


def load_site(path: Path, content_dir: Path | None = None) -> Site:
    """Load and validate the site file at ``path``; raises ConfigError listing every problem.

    ``content_dir`` is the project root holding ``policies/``; by default it is found by
    ``paths.content_root()``.
    """
    doc = load_yaml_file(path, str(path))
    model = _schema_pass(doc)
    content = content_dir if content_dir is not None else content_root()
    problems, inventory = crossfile.check_inventory(doc, path, model.inventory)
    problems += crossfile.check_baseline(doc, content, model.baseline)
    if model.ipv6 is not None and model.ipv6.plan is not None:
        problems += crossfile.check_referenced_file(doc, ("ipv6", "plan"), path, model.ipv6.plan)
    plans = model.drill.plans if model.drill is not None else []
    for index, plan in enumerate(plans):
        problems += crossfile.check_referenced_file(doc, ("drill", "plans", index), path, plan)
    problems += crossfile.check_parameters(doc, content, model.parameters)
    if inventory is not None:
        problems += crossfile.check_waivers(doc, content, model.waivers, inventory)
    if problems or inventory is None:
        raise ConfigError(_ordered(problems, doc.file))
    return _resolve(model, path, content, inventory)


def _schema_pass(doc: YamlDocument) -> SiteFile:
    secrets = list(_secret_problems(doc, doc.data, ()))
    secret_paths = {problem.key_path for problem in secrets}
    problems: list[ConfigProblem] = list(secrets)
    try:
        model = SiteFile.model_validate(doc.data)
    except ValidationError as exc:
        found = problems_from_validation(exc, doc.file, doc.lines, SiteFile)
        # An inline secret is also an unknown key; say the more useful thing once.
        problems += [p for p in found if p.key_path not in secret_paths]
        raise ConfigError(_ordered(problems, doc.file)) from None
    if problems:
        raise ConfigError(_ordered(problems, doc.file))
    return model


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
    for problem in problems:
        files.setdefault(problem.file, len(files))
    return sorted(
        problems,
        key=lambda p: (files[p.file], p.line is None, p.line or 0),
    )


def _resolve(model: SiteFile, path: Path, content: Path, inventory: Inventory) -> Site:
    site_path = path.resolve()
    root = site_path.parent
    keycloak = model.eidas.keycloak if model.eidas is not None else None
    if keycloak is not None and keycloak.admin_password_file is not None:
        secret_file = str(root / keycloak.admin_password_file)
        keycloak = keycloak.model_copy(update={"admin_password_file": secret_file})
    ipv6_plan = model.ipv6.plan if model.ipv6 is not None else None
    return Site(
        name=model.site.name,
        title=model.site.title,
        contact=model.site.contact,
        path=site_path,
        root=root,
        inventory_path=root / model.inventory,
        baseline=model.baseline,
        baseline_path=(content / "policies" / "baselines" / f"{model.baseline}.yml").resolve(),
        parameters={key: dict(value) for key, value in model.parameters.items()},
        ipv6_plan=root / ipv6_plan if ipv6_plan is not None else None,
        drill_plans=tuple(root / plan for plan in (model.drill.plans if model.drill else [])),
        keycloak=keycloak,
        evidence_dsn_env=model.evidence.dsn_env if model.evidence is not None else None,
        waivers=tuple(model.waivers),
        inventory=inventory,
        state_dir=state_dir_for(model.site.name),
        content_dir=content.resolve(),
    )
