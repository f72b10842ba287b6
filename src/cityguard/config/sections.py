"""The site file's area sections: which top-level keys areas add, and the models that check them.

The site file is a base (``version``, ``site``, ``inventory``, ``evidence`` and the hardening
keys ``baseline``, ``parameters``, ``waivers``) plus one optional section per area that has
settings. config never imports an area: areas register their section here, and ``load_site``
and the site schema compose the base with every registered section.

How an area adds its section, e.g. ``drill``:

1. In ``src/cityguard/drill/settings.py`` write the model: a subclass of
   ``cityguard.config.site.SiteSection`` with a ``Field(description=...)`` on every key (the
   schema is generated from it and a unit test refuses a key without a description). Secrets
   are references (``*_env``, ``*_file``, ``*_credential`` keys turned into a
   ``cityguard.core.secrets.SecretRef``), never values. Rules that look at other files (a plan
   file exists, a host is in the inventory) go in its ``check(scope)`` method, which returns
   located problems; they run with the rest of the logical pass.
2. In the area's ``cli.py``, inside ``register(commands, common)``, register it by name so that
   ``cityguard --help`` still imports no pydantic::

       from cityguard.config.sections import register_section

       register_section(
           "drill", "cityguard.drill.settings:DrillSettings", "Disaster-recovery drills."
       )

   Every command registers every area before it runs, so every command accepts every section
   (a ``harden`` run must not refuse a site file because it has a ``drill`` key), and
   ``cityguard schema site`` shows them all.
3. Read it with ``site.section("drill", DrillSettings)`` (None when the site has no such
   section); relative paths in it are relative to ``site.root``.
4. Add a commented example to ``examples/site/site.yml``; the schema test validates it.
5. If the area's roles or checks need per-host state derived from its files (the IPv6 plan
   gives each host ``cityguard_ipv6``), override ``SiteSection.hostvars(site)``: the
   workspace merges what it returns into the inventory of every harden and check run.

Outside the command line (tests, benchmarks), pass the sections to ``load_site(path,
sections=[SectionSpec(...)])`` or register them first. This module imports nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

#: Keys of the base model: no area may take them.
BASE_KEYS = frozenset(
    {"version", "site", "inventory", "baseline", "parameters", "evidence", "waivers"}
)


@dataclass(frozen=True)
class SectionSpec:
    """One area's section: its top-level key, its model, and the description the schema shows.

    ``model`` is the model class or its import path ``"package.module:ClassName"``; the path
    form lets a command register the section without importing pydantic.
    """

    key: str
    model: str | type[Any]
    """A ``cityguard.config.site.SiteSection`` subclass, or its import path."""
    description: str

    def __post_init__(self) -> None:
        if not self.key.isidentifier() or not self.key.islower():
            raise ValueError(f"site section key must be a lowercase name, got {self.key!r}")
        if self.key in BASE_KEYS:
            raise ValueError(f"site section key {self.key!r} is a key of the base site file")
        if not self.description.strip():
            raise ValueError(f"site section {self.key!r} needs a description")

    def load(self) -> type[Any]:
        """The model class, imported now if it was registered by name.

        ``site_file_model`` checks that it is a ``SiteSection``.
        """
        model = self.model
        if isinstance(model, str):
            module, _, name = model.partition(":")
            model = getattr(import_module(module), name)
        if not isinstance(model, type):
            raise TypeError(f"site section {self.key!r}: {model!r} is not a model class")
        return model


_lock = threading.Lock()
_registered: dict[str, SectionSpec] = {}


def register_section(key: str, model: str | type[Any], description: str) -> None:
    """Add an area's section to every site file loaded from now on; repeating it is harmless."""
    spec = SectionSpec(key, model, description)
    with _lock:
        known = _registered.get(key)
        if known is not None and known != spec:
            raise ValueError(f"site section {key!r} is already registered as {known.model!r}")
        _registered[key] = spec


def registered_sections() -> tuple[SectionSpec, ...]:
    """Every registered section, in the order they were registered."""
    with _lock:
        return tuple(_registered.values())


def unregister_section(key: str) -> None:
    """Forget a section (tests)."""
    with _lock:
        _registered.pop(key, None)


def check_unique(sections: Iterable[SectionSpec]) -> tuple[SectionSpec, ...]:
    """The sections as a tuple, refusing two with the same key."""
    result = tuple(sections)
    keys = [spec.key for spec in result]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"site sections given twice: {', '.join(duplicates)}")
    return result
