"""Site configuration: the site file, its inventory, and where cityguard keeps its files.

Everything a command needs about a city comes through ``load_site``, which either returns a
fully resolved ``Site`` or raises ``ConfigError`` listing every problem with file and line.
Areas add their own section of the site file through ``cityguard.config.sections``.

The names below are loaded on first use, so an area's command registration can reach
``cityguard.config.sections`` without importing pydantic.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cityguard.config.errors import ConfigError, ConfigProblem, format_key_path
    from cityguard.config.loader import SECRET_MESSAGE, load_site
    from cityguard.config.paths import cache_dir, content_root, state_dir_for
    from cityguard.config.schema import site_schema
    from cityguard.config.scope import SectionScope
    from cityguard.config.sections import SectionSpec, register_section, registered_sections
    from cityguard.config.site import (
        SUPPORTED_VERSIONS,
        EvidenceSettings,
        Site,
        SiteFile,
        SiteInfo,
        SiteSection,
        Waiver,
        site_file_model,
    )

_EXPORTS = {
    "SECRET_MESSAGE": "cityguard.config.loader",
    "load_site": "cityguard.config.loader",
    "ConfigError": "cityguard.config.errors",
    "ConfigProblem": "cityguard.config.errors",
    "format_key_path": "cityguard.config.errors",
    "cache_dir": "cityguard.config.paths",
    "content_root": "cityguard.config.paths",
    "state_dir_for": "cityguard.config.paths",
    "site_schema": "cityguard.config.schema",
    "SectionSpec": "cityguard.config.sections",
    "register_section": "cityguard.config.sections",
    "registered_sections": "cityguard.config.sections",
    "SUPPORTED_VERSIONS": "cityguard.config.site",
    "EvidenceSettings": "cityguard.config.site",
    "SectionScope": "cityguard.config.scope",
    "Site": "cityguard.config.site",
    "SiteFile": "cityguard.config.site",
    "SiteInfo": "cityguard.config.site",
    "SiteSection": "cityguard.config.site",
    "Waiver": "cityguard.config.site",
    "site_file_model": "cityguard.config.site",
}

__all__ = [
    "SECRET_MESSAGE",
    "SUPPORTED_VERSIONS",
    "ConfigError",
    "ConfigProblem",
    "EvidenceSettings",
    "SectionScope",
    "SectionSpec",
    "Site",
    "SiteFile",
    "SiteInfo",
    "SiteSection",
    "Waiver",
    "cache_dir",
    "content_root",
    "format_key_path",
    "load_site",
    "register_section",
    "registered_sections",
    "site_file_model",
    "site_schema",
    "state_dir_for",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
