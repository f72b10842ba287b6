"""What is installed and running on a host: dpkg's package states, systemd's unit files and
units, the processes and the listening sockets. Nearly every system-area check asks one of
these (is chrony installed, is auditd.service enabled, does anything listen on a port), so
they are gathered once here and looked up with `package()` and `unit()`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import needs


@dataclass(frozen=True)
class Package:
    name: str
    status: str  # dpkg's abbreviated status, e.g. "ii", "rc", "un"
    version: str

    @property
    def installed(self) -> bool:
        # second letter: n not installed, c config files only; anything else has files on disk
        return len(self.status) > 1 and self.status[1] not in "nc"

    @property
    def state(self) -> str:
        if self.installed:
            return "installed"
        if self.status[1:2] == "c":
            return "removed, configuration files remain"
        return "not installed"

    @property
    def label(self) -> str:
        """The name, with the version when installed (it goes into the evidence)."""
        return f"{self.name} {self.version}" if self.installed else self.name

    def describe(self) -> str:
        return f"{self.label} {self.state}"


def parse_packages(lines: list[str]) -> dict[str, Package]:
    packages = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[1]:
            packages[parts[1]] = Package(parts[1], parts[0].strip(), parts[2])
    return packages


def package(packages: Mapping[str, Package], name: str) -> Package:
    return packages.get(name) or Package(name, "un", "")


@dataclass(frozen=True)
class Unit:
    name: str
    file_state: str | None  # enabled, disabled, masked, static, ...; None: no unit file
    load: str = "not-found"
    active: str = "inactive"
    sub: str = "dead"

    def describe(self) -> str:
        if self.file_state is None and self.load == "not-found":
            return f"{self.name} not found"
        return f"{self.name} {self.file_state or self.load}, {self.active}"


def parse_units(lines: list[str]) -> dict[str, Unit]:
    """`F unit state` lines from list-unit-files and `A unit load active sub` from list-units."""
    files: dict[str, str] = {}
    loaded: dict[str, tuple[str, str, str]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "F":
            files[parts[1]] = parts[2]
        elif len(parts) >= 5 and parts[0] == "A":
            loaded[parts[1]] = (parts[2], parts[3], parts[4])
    units = {}
    for name in set(files) | set(loaded):
        load, active, sub = loaded.get(name, ("not-loaded", "inactive", "dead"))
        if name in files and load == "not-loaded":
            load = "loaded"
        units[name] = Unit(name, files.get(name), load, active, sub)
    return units


def unit(units: Mapping[str, Unit], name: str) -> Unit:
    return units.get(name) or Unit(name, None)


def parse_processes(lines: list[str]) -> list[tuple[str, str]]:
    """(user, command) of every process."""
    result = []
    for line in lines:
        parts = line.split(None, 1)
        if len(parts) == 2:
            result.append((parts[0], parts[1].strip()))
    return result


@dataclass(frozen=True)
class Listener:
    protocol: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.address.split("%")[0]).is_loopback
        except ValueError:
            return self.address == "localhost"


def parse_listeners(lines: list[str]) -> list[Listener]:
    """`proto local-address:port` lines, from `ss -Hltnu`."""
    result = []
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            continue
        address, _, port = parts[1].rpartition(":")
        if port.isdigit():
            result.append(Listener(parts[0], address.strip("[]") or "*", int(port)))
    return result


PACKAGES_COMMAND = (
    needs("dpkg-query", "not a Debian-family host")
    + "dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\n' 2>/dev/null; true"
)
UNITS_COMMAND = (
    "[ -d /run/systemd/system ] || { echo '@@error'; "
    "echo 'systemd is not running on this host'; exit 0; }; "
    "systemctl list-unit-files --no-legend --no-pager --type=service,socket,timer "
    "2>/dev/null | awk '{print \"F\", $1, $2}'; "
    "systemctl list-units --all --no-legend --no-pager --plain --type=service,socket,timer "
    "2>/dev/null | awk '{print \"A\", $1, $2, $3, $4}'"
)
PROCESSES_COMMAND = "ps -eo user:32=,comm= 2>/dev/null; true"
LISTENERS_COMMAND = "ss -Hltnu 2>/dev/null | awk '{print $1, $5}'; true"

register_section("system-packages", PACKAGES_COMMAND, parse_packages)
register_section("system-units", UNITS_COMMAND, parse_units)
register_section("system-processes", PROCESSES_COMMAND, parse_processes)
register_section("system-listeners", LISTENERS_COMMAND, parse_listeners)
