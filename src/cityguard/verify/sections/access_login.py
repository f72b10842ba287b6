"""How a login is configured, read from the `access-files` section (see `access`): PAM stacks,
pwquality and faillock settings, login.defs, shell umasks and valid shells. Kept apart from
sudoers and the account databases, which the checks read for other controls.

It registers no section; these are pure functions of the files' lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cityguard.verify.sections.access import (
    FAILLOCK_CONF,
    LOGIN_DEFS,
    PROFILE_DIR,
    PWQUALITY_CONF,
    PWQUALITY_DIR,
    SHELLS,
    UMASK_FILES,
)


@dataclass(frozen=True)
class PamLine:
    """One rule of a PAM stack: `auth [success=1 default=ignore] pam_unix.so nullok`."""

    kind: str
    control: str
    module: str
    args: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join([self.kind, self.control, self.module, *self.args])

    def has(self, flag: str) -> bool:
        return flag in self.args

    def option(self, name: str) -> str | None:
        """The value of `name=value`, "" for a bare `name`, None when absent."""
        for arg in self.args:
            key, sep, value = arg.partition("=")
            if key == name:
                return value if sep else ""
        return None


_PAM_RULE = re.compile(r"^-?(auth|account|password|session)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


def pam_stack(files: Mapping[str, list[str]], path: str) -> list[PamLine]:
    """The rules of one PAM file, comments dropped (`@include` lines are not followed)."""
    rules = []
    for raw in files.get(path, []):
        text = raw.split("#", 1)[0].strip()
        match = _PAM_RULE.match(text)
        if match:
            kind, control, module, args = match.groups()
            rules.append(PamLine(kind, " ".join(control.split()), module, tuple(args.split())))
    return rules


def pam_rules(files: Mapping[str, list[str]], path: str, module: str) -> list[PamLine]:
    return [rule for rule in pam_stack(files, path) if rule.module.endswith(module)]


def key_values(lines: Iterable[str], separator: str | None = "=") -> dict[str, str]:
    """`key = value` lines (or `KEY value` with separator None); a bare flag maps to ""; the
    last occurrence wins, as in the libraries that read these files."""
    values: dict[str, str] = {}
    for raw in lines:
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if separator is None:
            key, value = [*text.split(None, 1), ""][:2]
        else:
            key, _, value = text.partition(separator)
        values[key.strip()] = value.strip().strip('"')
    return values


def login_defs(files: Mapping[str, list[str]]) -> dict[str, str]:
    return key_values(files.get(LOGIN_DEFS, []), separator=None)


def pwquality_settings(files: Mapping[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Effective pam_pwquality settings -> (value, where it was set).

    libpwquality reads pwquality.conf, then pwquality.conf.d/*.conf in name order (a later value
    wins); options on the pam_pwquality line of common-password win over both.
    """
    sources = [PWQUALITY_CONF, *sorted(p for p in files if p.startswith(PWQUALITY_DIR + "/"))]
    settings: dict[str, tuple[str, str]] = {}
    for path in sources:
        for key, value in key_values(files.get(path, [])).items():
            settings[key] = (value, path)
    for rule in pam_rules(files, "/etc/pam.d/common-password", "pam_pwquality.so"):
        for arg in rule.args:
            key, _, value = arg.partition("=")
            settings[key] = (value, "/etc/pam.d/common-password")
    return settings


def faillock_settings(files: Mapping[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Effective pam_faillock settings: faillock.conf, overridden by options on its PAM lines."""
    settings = {k: (v, FAILLOCK_CONF) for k, v in key_values(files.get(FAILLOCK_CONF, [])).items()}
    for path in ("/etc/pam.d/common-auth", "/etc/pam.d/common-account"):
        for rule in pam_rules(files, path, "pam_faillock.so"):
            for arg in rule.args:
                key, _, value = arg.partition("=")
                if key not in ("preauth", "authfail", "authsucc"):
                    settings[key] = (value, path)
    return settings


def umask_lines(files: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """(file, umask value) for each `umask NNN` command in the shell start-up files."""
    paths = [*UMASK_FILES, *sorted(p for p in files if p.startswith(PROFILE_DIR + "/"))]
    found = []
    for path in paths:
        for raw in files.get(path, []):
            text = raw.split("#", 1)[0]
            for match in re.finditer(r"(?:^|[;&|\s])umask\s+(0?[0-7]{3})\b", text):
                found.append((path, match.group(1)))
    return found


def valid_shells(files: Mapping[str, list[str]]) -> set[str]:
    """Login shells: /etc/shells minus nologin (as CIS reads it)."""
    return {
        line.strip()
        for line in files.get(SHELLS, [])
        if line.strip().startswith("/") and not line.strip().endswith("nologin")
    }
