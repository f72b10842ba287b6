"""Kernel modules: how modprobe is configured and what is loaded, as two fact sections gathered
in the same SSH round trip as the core ones:

- ``kernel-modprobe``: the install/blacklist lines modprobe resolves from every modprobe.d;
- ``kernel-loaded-modules``: /proc/modules (absent in a lab container).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cityguard.verify.facts import register_section

# ------------------------------------------------------------------------- modprobe


@dataclass(frozen=True)
class ModprobeConfig:
    """What modprobe resolved from its configuration directories (names with underscores)."""

    install: dict[str, str] = field(default_factory=dict)
    blacklist: frozenset[str] = frozenset()

    def install_command(self, module: str) -> str | None:
        return self.install.get(module_name(module))

    def blacklisted(self, module: str) -> bool:
        return module_name(module) in self.blacklist


def module_name(module: str) -> str:
    """modprobe treats - and _ alike in module names and reports them with _."""
    return module.replace("-", "_")


MODPROBE_COMMAND = (
    "command -v modprobe >/dev/null 2>&1 || { echo @@error; echo modprobe not found; exit 0; }; "
    "out=$(modprobe --showconfig 2>&1) || { echo @@error; printf '%s\\n' \"$out\" | head -3; "
    "exit 0; }; printf '%s\\n' \"$out\" | grep -E '^(install|blacklist) ' || true"
)


def parse_modprobe(lines: list[str]) -> ModprobeConfig:
    """`modprobe --showconfig` lines; the first install command of a module is the one used."""
    install: dict[str, str] = {}
    blacklist: set[str] = set()
    for line in lines:
        words = line.split(None, 2)
        if len(words) >= 2 and words[0] == "blacklist":
            blacklist.add(module_name(words[1]))
        elif len(words) == 3 and words[0] == "install":
            install.setdefault(module_name(words[1]), words[2].strip())
    return ModprobeConfig(install, frozenset(blacklist))


# ------------------------------------------------------------------------- loaded modules

NO_PROC_MODULES = "@@no-proc-modules"
LOADED_MODULES_COMMAND = f"cat /proc/modules 2>/dev/null || echo '{NO_PROC_MODULES}'"


def parse_loaded_modules(lines: list[str]) -> dict[str, int] | None:
    """Module name -> reference count from /proc/modules; None when the file is absent."""
    if any(line.strip() == NO_PROC_MODULES for line in lines):
        return None
    loaded: dict[str, int] = {}
    for line in lines:
        words = line.split()
        if len(words) >= 3:
            loaded[words[0]] = int(words[2]) if words[2].isdigit() else 0
    return loaded


register_section("kernel-modprobe", MODPROBE_COMMAND, parse_modprobe)
register_section("kernel-loaded-modules", LOADED_MODULES_COMMAND, parse_loaded_modules)
