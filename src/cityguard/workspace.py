"""Everything a command needs about one site, loaded and validated once.

The site file, the control catalog and baseline, the selected controls with their resolved
parameters, and the inventory with the lab's connection details merged in when a lab is up and
the per-host variables the site's area sections contribute (``SiteSection.hostvars``, e.g. the
IPv6 plan's ``cityguard_ipv6``), which harden's playbooks and check's suites both read.
All configuration problems from these sources are reported together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.catalog import Catalog, Selection, load_baseline, load_catalog, select
from cityguard.catalog.site_rules import CatalogRule
from cityguard.config import Site, load_site
from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.config.inventory import Inventory
from cityguard.config.overlay import read_inventory_overlay
from cityguard.config.paths import ensure_private_dir
from cityguard.core.sitelock import site_lock
from cityguard.evidence import EvidenceStore, open_store
from cityguard.evidence.model import new_run
from cityguard.evidence.recorder import Recorder, record_run


@dataclass(frozen=True)
class Workspace:
    site: Site
    catalog: Catalog
    selection: Selection
    inventory: Inventory

    @property
    def content_dir(self) -> Path:
        return self.site.content_dir

    def new_run_dir(self, command: str) -> Path:
        """A fresh directory under the state dir for one run's artifacts; sorts by time."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = ensure_private_dir(self.site.state_dir) / "runs" / f"{stamp}-{command}"
        path.mkdir(parents=True, mode=0o700)
        return path

    @contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """The site's run lock (cityguard.core.sitelock): one harden or check at a time."""
        with site_lock(ensure_private_dir(self.site.state_dir), self.site.name, command):
            yield

    def write_inventory(
        self, run_dir: Path, hostvars: dict[str, dict[str, Any]] | None = None
    ) -> Path:
        """The run's inventory file, with extra per-host variables for this run only."""
        path = run_dir / "inventory.yml"
        inventory = self.inventory.with_hostvars(hostvars) if hostvars else self.inventory
        inventory.write(path)
        return path

    def open_evidence(self) -> EvidenceStore:
        return open_store(ensure_private_dir(self.site.state_dir), self.site.evidence_dsn())

    @contextmanager
    def record(
        self, command: str, hosts: Sequence[str], run_dir: Path, selection: Selection
    ) -> Iterator[Recorder]:
        """The evidence run of one command: opened now, closed however the command ends.

        The run keeps the baseline and the resolved parameters of the selection it is judged
        against (a command narrowed to some controls records what it really used)."""
        run = new_run(
            self.site.name,
            command,
            hosts,
            content_dir=self.content_dir,
            artifacts_dir=run_dir,
            baseline=selection.baseline,
            parameters=selection.parameters,
        )
        with self.open_evidence() as store, record_run(store, run) as recorder:
            yield recorder


def comma_list(text: str | None) -> list[str] | None:
    """A comma-separated option as a list; None when the option was not given."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]  # "" or "," stays empty


def connected_inventory(site: Site) -> Inventory:
    """The site's inventory with any connection overlay in its state directory merged in."""
    overlay = read_inventory_overlay(site.state_dir)
    known = set(site.inventory.host_names())
    return site.inventory.with_hostvars({h: v for h, v in overlay.items() if h in known})


def section_hostvars(site: Site) -> dict[str, dict[str, Any]]:
    """The per-host variables every area section of the site contributes (``hostvars``),
    merged; the problems of all sections are raised together as one ConfigError."""
    merged: dict[str, dict[str, Any]] = {}
    problems: list[ConfigProblem] = []
    for key, section in site.sections.items():
        try:
            contributed = section.hostvars(site)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        for host, values in contributed.items():
            mine = merged.setdefault(host, {})
            taken = sorted(set(mine) & set(values))
            if taken:  # a bug of an area, not of the site
                raise ValueError(f"site section {key!r} sets {', '.join(taken)} again")
            mine.update(values)
    if problems:
        raise ConfigError(problems)
    return merged


def open_evidence_for(site_path: Path) -> EvidenceStore:
    """The evidence store of a site, for commands that only read evidence."""
    site = load_site(site_path)
    return open_store(ensure_private_dir(site.state_dir), site.evidence_dsn())


def open_workspace(site_path: Path, controls: list[str] | None = None) -> Workspace:
    """Load and validate; raises ConfigError with every problem found."""
    rule = CatalogRule()
    site = load_site(site_path, rules=[rule])
    policies = site.content_dir / "policies"
    catalog = rule.catalog if rule.catalog is not None else load_catalog(policies)
    baseline = rule.baseline or load_baseline(policies, site.baseline, catalog)
    selection = select(catalog, baseline, site.parameters, controls)
    inventory = connected_inventory(site).with_hostvars(section_hostvars(site))
    return Workspace(site, catalog, selection, inventory)
