"""The site checked against the catalog: overrides and waivers fit the site's baseline.

The site file's own pass (cityguard.config) knows shapes and files, not controls. This rule runs
in its logical pass (``load_site(..., rules=[...])``), so a parameter override of the wrong type
or out of range, an unknown parameter name, or an override or waiver of a control the baseline
does not select is reported with every other problem of the site, located in the site file,
before anything runs. Unknown control ids are the config pass's own rule and not repeated here.
"""

from __future__ import annotations

from pathlib import Path

from cityguard.catalog.controls import (
    Baseline,
    Catalog,
    load_baseline,
    load_catalog,
    override_problems,
)
from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.config.site import SiteFile
from cityguard.config.yaml_lines import YamlDocument


class CatalogRule:
    """A site rule that keeps the catalog and baseline it loaded, for the workspace to reuse."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self.baseline: Baseline | None = None

    def __call__(self, model: SiteFile, doc: YamlDocument, content: Path) -> list[ConfigProblem]:
        policies = content / "policies"
        if not (policies / "baselines" / f"{model.baseline}.yml").is_file():
            return []  # the unknown baseline is already reported
        try:
            self.catalog = load_catalog(policies)
            self.baseline = load_baseline(policies, model.baseline, self.catalog)
        except ConfigError as exc:
            return exc.problems
        return self._parameters(model, doc) + self._waivers(model, doc)

    def _outside(self, control_id: str) -> str | None:
        """Why a known control cannot be overridden or waived here, or None when it can."""
        assert self.catalog is not None and self.baseline is not None
        if control_id not in self.catalog.controls or control_id in self.baseline.controls:
            return None
        return f"{control_id} is not in baseline {self.baseline.name}, so this does nothing"

    def _parameters(self, model: SiteFile, doc: YamlDocument) -> list[ConfigProblem]:
        assert self.catalog is not None
        problems = []
        for control_id, overrides in model.parameters.items():
            where = ("parameters", control_id)
            outside = self._outside(control_id)
            if outside is not None:
                problems.append(doc.problem(where, outside))
            elif control_id in self.catalog.controls:
                control = self.catalog.controls[control_id]
                problems += [
                    doc.problem((*where, *sub), message)
                    for sub, message in override_problems(control, overrides)
                ]
        return problems

    def _waivers(self, model: SiteFile, doc: YamlDocument) -> list[ConfigProblem]:
        problems = []
        for index, waiver in enumerate(model.waivers):
            outside = self._outside(waiver.control)
            if outside is not None:
                problems.append(doc.problem(("waivers", index, "control"), outside))
        return problems
