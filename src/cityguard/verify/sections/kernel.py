"""What the kernel-area checks share besides their facts: the controls catalog's default
parameters (to parametrize checks at collection time), the inventory names a host answers to,
and the expectations on sysctl values.

The sysctl values themselves come from the core sections (`facts.sysctl_runtime`,
`facts.sysctl_persisted`); the kernel-area sections live in `kernel_modules` (modprobe, loaded
modules), `kernel_limits` (pam_limits, systemd-coredump) and `kernel_mounts`. This module
registers no section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cityguard.config import content_root
from cityguard.verify.expectations import Expect
from cityguard.verify.facts import HostFacts, SectionError
from cityguard.verify.sections._common import read_control_parameters

# ------------------------------------------------------------------------- catalog defaults


def catalog_parameters(check_file: str, control_file: str) -> dict[str, dict[str, Any]]:
    """Control id -> default parameters, read from policies/controls/<control_file>.

    Checks are parametrized per key, module or option at collection time, before any host or
    site is known; the catalog next to the checks is the one list of those keys. The values a
    check expects still come from the run's resolved parameters (the `param` fixture).
    """
    path = Path(check_file).resolve().parent.parent / "policies" / "controls" / control_file
    if not path.is_file():  # the checks were copied away from their content directory
        path = content_root() / "policies" / "controls" / control_file
    return read_control_parameters(path)


# ------------------------------------------------------------------------- inventory names


def inventory_names(hosts_spec: str | None) -> set[str]:
    """The names a host answers to in the inventory: its groups, its own name, and 'all'.

    Parameters such as router_groups and hosts_using_slaac list such names; the roles compute
    the same set from `group_names + [inventory_hostname, 'all']`. Raises SectionError when
    the host is not reached through an Ansible inventory (its groups are then unknown).
    """
    import testinfra

    backend = testinfra.get_host(hosts_spec or "local://").backend
    get_variables = getattr(backend, "get_variables", None)
    if get_variables is None:
        raise SectionError("the host's inventory groups are unknown: it is not an ansible:// host")
    variables = get_variables()
    groups = set(variables.get("group_names") or [])
    return {*groups, str(variables.get("inventory_hostname")), "all"}


# ------------------------------------------------------------------------- sysctl runtime


def runtime_not_held(container: str | None, key: str, runtime: dict[str, str]) -> str | None:
    """Why a container cannot hold the runtime value of a sysctl key; None when it can.

    net.* keys belong to the container's own network namespace, except the few that exist only
    in the machine's initial namespace (absent from the container's `sysctl -a`); all other
    keys are global to the machine. On a real server (container None) every key is checked.
    """
    if not container:
        return None
    if not key.startswith("net."):
        return (
            f"{key.split('.')[0]}.* sysctls are global: a {container} container sees the "
            "machine's value and cannot set it; the persisted value is checked instead"
        )
    if key not in runtime:
        return (
            f"{key} exists only in the machine's initial network namespace, not in the "
            f"{container} container's own; the persisted value is checked instead"
        )
    return None


def expect_sysctl_runtime(facts: HostFacts, expect: Expect, key: str, wanted: str) -> None:
    """The key's value now equals `wanted`, or not-applicable where a container cannot hold it."""
    reason = runtime_not_held(facts.container, key, facts.sysctl_runtime)
    if reason:
        expect.not_applicable(reason)
    expect.equal(facts.sysctl_runtime.get(key), wanted, key)


def sysctl_persisted(facts: HostFacts, key: str) -> tuple[str | None, str]:
    """(value, file) the host boots with; (None, 'no file') when no file sets the key."""
    return facts.sysctl_persisted.get(key, (None, "no file"))


def expect_sysctl_persisted(facts: HostFacts, expect: Expect, key: str, wanted: str) -> None:
    """The value systemd-sysctl applies at boot (precedence resolved) equals `wanted`."""
    value, source = sysctl_persisted(facts, key)
    expect.equal(value, wanted, f"{key} in {source}")
