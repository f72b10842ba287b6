"""Site configuration: the site file, its inventory, and where cityguard keeps its files.

Everything a command needs about a city comes through ``load_site``, which either returns a
fully resolved ``Site`` or raises ``ConfigError`` listing every problem with file and line.
"""

from cityguard.config.errors import ConfigError, ConfigProblem, format_key_path
from cityguard.config.loader import SECRET_MESSAGE, load_site
from cityguard.config.paths import cache_dir, content_root, state_dir_for
from cityguard.config.site import (
    DrillSettings,
    EidasSettings,
    EvidenceSettings,
    Ipv6Settings,
    KeycloakSettings,
    Site,
    SiteFile,
    SiteInfo,
    Waiver,
)

__all__ = [
    "SECRET_MESSAGE",
    "ConfigError",
    "ConfigProblem",
    "DrillSettings",
    "EidasSettings",
    "EvidenceSettings",
    "Ipv6Settings",
    "KeycloakSettings",
    "Site",
    "SiteFile",
    "SiteInfo",
    "Waiver",
    "cache_dir",
    "content_root",
    "format_key_path",
    "load_site",
    "state_dir_for",
]
