"""Role modules that must act on the state in force: PAM options that override cityguard's
configuration files, and sysctl keys whose writes reset others."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from types import ModuleType

import pytest

from cityguard.config import content_root

ROLES = content_root() / "playbooks" / "roles"
MODULE_UTILS = content_root() / "playbooks" / "module_utils"


def load(path: Path) -> ModuleType:
    """A role's module imported as a Python module (its module_utils made importable)."""
    utils = types.ModuleType("ansible.module_utils.cityguard_host")
    exec(
        compile((MODULE_UTILS / "cityguard_host.py").read_text(), "cityguard_host", "exec"),
        utils.__dict__,
    )
    sys.modules.setdefault("ansible.module_utils.cityguard_host", utils)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pam() -> ModuleType:
    return load(ROLES / "accounts" / "library" / "cityguard_pam_stack.py")


@pytest.fixture(scope="module")
def sysctl() -> ModuleType:
    return load(ROLES / "sysctl" / "library" / "cityguard_sysctl_runtime.py")


AUTH = (
    "auth\trequisite\tpam_faillock.so preauth deny=10 unlock_time=0\n"
    "auth\t[success=1 default=ignore]\tpam_unix.so\n"
    "auth\t[default=die]\tpam_faillock.so authfail deny=10\n"
)


def test_pam_faillock_arguments_that_override_faillock_conf_are_removed(pam: ModuleType) -> None:
    edit = {"module": "pam_faillock.so", "remove": ["deny", "unlock_time"]}
    text, changes = pam.edit_options(AUTH, "auth", edit)
    assert "deny=10" not in text and "unlock_time" not in text
    assert "pam_faillock.so preauth\n" in text and "pam_faillock.so authfail\n" in text
    assert len(changes) == 2
    assert pam.edit_options(text, "auth", edit)[1] == []  # then nothing more to do


def test_pam_an_option_both_removed_and_added_stays_in_place(pam: ModuleType) -> None:
    line = "password\trequisite\tpam_pwhistory.so remember=24 enforce_for_root use_authtok\n"
    edit = {"module": "pam_pwhistory.so", "remove": ["remember"], "add": ["remember=24"]}
    assert pam.edit_options(line, "password", edit) == (line, [])
    text, changes = pam.edit_options(line.replace("24", "3"), "password", edit)
    assert "remember=3" not in text and "remember=24" in text and len(changes) == 1


def test_sysctl_forwarding_is_written_before_the_keys_it_resets(sysctl: ModuleType) -> None:
    keys = [
        "net.ipv4.conf.all.accept_redirects",
        "net.ipv4.conf.default.accept_redirects",
        "net.ipv4.ip_forward",
        "net.ipv6.conf.all.forwarding",
        "kernel.randomize_va_space",
    ]
    order = sysctl.apply_order(keys)
    assert order[:2] == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
    assert order.index("net.ipv4.ip_forward") < order.index("net.ipv4.conf.all.accept_redirects")
