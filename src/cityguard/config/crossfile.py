"""The logical pass: rules that look beyond the site file itself.

The schema pass can only say a value has the right shape; whether the inventory exists,
the baseline is one we ship, or a parameter override targets a real control needs other
files. Keeping these rules separate (as borgmatic does) means they only run on data the
schema already accepted, so they can rely on types instead of re-checking them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.config.scope import check_referenced_file, shown_path
from cityguard.config.site import Waiver
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

if TYPE_CHECKING:
    from cityguard.config.inventory import Inventory


def check_inventory(
    doc: YamlDocument, site_path: Path, relative: str
) -> tuple[list[ConfigProblem], Inventory | None]:
    """The inventory must exist and load; its own problems keep its own file and lines."""
    from cityguard.config.inventory import load_inventory  # inventory imports config: avoid a cycle

    problems = check_referenced_file(doc, ("inventory",), site_path, relative)
    if problems:
        return problems, None
    try:
        inventory = load_inventory(site_path.parent / relative, shown_path(site_path, relative))
    except ConfigError as exc:
        return exc.problems, None
    return [], inventory


def check_baseline(doc: YamlDocument, content_dir: Path, name: str) -> list[ConfigProblem]:
    """The baseline must be one shipped in ``policies/baselines``; list them if it is not."""
    directory = content_dir / "policies" / "baselines"
    if (directory / f"{name}.yml").is_file():
        return []
    known = sorted(p.stem for p in directory.glob("*.yml"))
    listing = f"known: {', '.join(known)}" if known else f"no baselines in {directory}"
    return [doc.problem(("baseline",), f"unknown baseline '{name}' ({listing})")]


def check_parameters(
    doc: YamlDocument, content_dir: Path, parameters: dict[str, dict[str, Any]]
) -> list[ConfigProblem]:
    """Overrides must target controls in the catalog, else they would silently do nothing.

    With no control files yet (early in a project) the rule is skipped rather than failing
    every override.
    """
    if not parameters:
        return []
    catalog, problems = control_catalog(content_dir)
    if not catalog:
        return problems
    for control_id in parameters:
        if control_id in catalog:
            continue
        close = difflib.get_close_matches(control_id, sorted(catalog), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "not in policies/controls"
        problems.append(
            doc.problem(("parameters", control_id), f"unknown control id '{control_id}' ({hint})")
        )
    return problems


def check_waivers(
    doc: YamlDocument, content_dir: Path, waivers: list[Waiver], inventory: Inventory
) -> list[ConfigProblem]:
    """A waiver must name a real control and real hosts or groups, or it waives nothing."""
    if not waivers:
        return []
    catalog, problems = control_catalog(content_dir)
    names = set(inventory.host_names()) | set(inventory.groups)
    for index, waiver in enumerate(waivers):
        if catalog and waiver.control not in catalog:
            problems.append(
                doc.problem(("waivers", index, "control"), f"unknown control id '{waiver.control}'")
            )
        for position, name in enumerate(waiver.hosts):
            if name not in names:
                problems.append(
                    doc.problem(
                        ("waivers", index, "hosts", position),
                        f"no host or group named '{name}' in the inventory",
                    )
                )
    return problems


def control_catalog(content_dir: Path) -> tuple[set[str], list[ConfigProblem]]:
    """Every ``id:`` in ``policies/controls/*.yml``, and problems with files that won't load.

    A control file may hold one control, a list of them, or a ``controls:`` list; all are
    accepted so this rule does not depend on how the control authors lay out their files.
    """
    ids: set[str] = set()
    problems: list[ConfigProblem] = []
    for control_file in sorted((content_dir / "policies" / "controls").glob("*.yml")):
        try:
            doc = load_yaml_file(control_file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        ids.update(_control_ids(doc.data))
    return ids, problems


def _control_ids(data: Any) -> Iterator[str]:
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                yield item["id"]
    elif isinstance(data, dict):
        if isinstance(data.get("id"), str):
            yield data["id"]
        if isinstance(data.get("controls"), list):
            yield from _control_ids(data["controls"])
