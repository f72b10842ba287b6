#!/usr/bin/python
"""Ansible module: bring Debian's PAM stacks (/etc/pam.d/common-*) to the state cityguard needs.

Debian and Ubuntu build the common-* files with pam-auth-update from the profiles in
/usr/share/pam-configs. This module uses that tool rather than writing the files itself, so
modules other packages registered (sssd, krb5, ...) stay in the stack:

1. every profile in `profiles` (name -> its text) is written to /usr/share/pam-configs and must
   be in the live stack; if one is missing or its text changed it runs
   `pam-auth-update --enable <profiles>` (which keeps the other enabled profiles);
2. options on the rules of some modules are edited in place (`nullok` removed from pam_unix,
   the hashing method set on its password rule). pam-auth-update keeps such option edits of
   the rules it wrote as local modifications, so they survive its later runs.

It never runs pam-auth-update with --force unless asked: that would drop lines an
administrator added by hand (a second factor, for instance). When pam-auth-update refuses
because of such lines, the module fails and says so. The rollback is not its job: the role
arms a change guard (role ssh, cityguard_change_guard) over the stack before calling it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_pam_stack
short_description: Enable pam-auth-update profiles and edit module options in the common-* stacks
options:
  profiles:
    description: >-
      pam-auth-update profiles that must be in the stack, name -> the profile's text (written to
      configs_dir when it differs).
    type: dict
    default: {}
  options:
    description: >-
      Option edits, each {module, types, remove, add}: on every rule of `module` in the
      common-<type> files, drop options named in `remove` (a name matches `name` and
      `name=value`) and append those in `add` that are missing.
    type: list
    elements: dict
    default: []
  force:
    description: Run pam-auth-update with --force (drops hand-made lines in the managed block).
    type: bool
    default: false
  pam_dir:
    type: path
    default: /etc/pam.d
  configs_dir:
    type: path
    default: /usr/share/pam-configs
"""

TYPES = ("auth", "account", "password", "session", "session-noninteractive")
RULE = re.compile(r"^(-?)(auth|account|password|session)(\s+)(\[[^\]]*\]|\S+)(\s+)(\S+)(.*)$")


def parse_profile_text(text: str) -> dict[str, list[tuple[str, list[str]]]]:
    """type -> [(module, args)] of a pam-auth-update profile (the non-Initial sections)."""
    sections: dict[str, list[tuple[str, list[str]]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            field = line.split(":", 1)[0].strip().lower()
            current = field if field in ("auth", "account", "password", "session") else None
            continue
        if current:
            words = re.sub(r"\[[^\]]*\]", "CONTROL", line).split()
            if len(words) >= 2:
                sections.setdefault(current, []).append((words[1], words[2:]))
    return sections


def live_rules(text: str, kind: str) -> list[tuple[str, list[str]]]:
    rules = []
    for line in text.splitlines():
        match = RULE.match(line.split("#", 1)[0].rstrip())
        if match and match.group(2) == kind.split("-", 1)[0]:
            rules.append((match.group(6), match.group(7).split()))
    return rules


def missing_profile_rules(profile: str, sections, stacks: dict[str, str]) -> list[str]:
    missing = []
    for kind, rules in sections.items():
        live = live_rules(stacks.get(kind, ""), kind)
        for module, args in rules:
            if not any(m == module and set(args) <= set(a) for m, a in live):
                missing.append(f"{profile}: {kind} {module} {' '.join(args)}".strip())
    return missing


def _matches(option: str, names: list[str]) -> bool:
    return option.split("=", 1)[0] in names or option in names


def edit_options(text: str, kind: str, edit: dict) -> tuple[str, list[str]]:
    """The stack with `edit` applied to the rules of its module, and what changed."""
    rule_type = kind.split("-", 1)[0]  # common-session-noninteractive holds session rules
    lines, changes = [], []
    for line in text.splitlines(keepends=True):
        body, hash_sign, comment = line.rstrip("\n").partition("#")
        match = RULE.match(body.rstrip())
        if not match or match.group(2) != rule_type or not match.group(6).endswith(edit["module"]):
            lines.append(line)
            continue
        args = match.group(7).split()
        wanted = edit.get("add") or []
        # an option that is also to be added stays where it is (remove remember, add remember=5)
        kept = [a for a in args if a in wanted or not _matches(a, edit.get("remove") or [])]
        added = [a for a in edit.get("add") or [] if a not in kept]
        if kept == args and not added:
            lines.append(line)
            continue
        new = "".join(match.group(i) for i in range(1, 7)) + " " + " ".join(kept + added)
        if hash_sign:
            new += " #" + comment
        changes.append(f"{kind} {edit['module']}: {' '.join(args)} -> {' '.join(kept + added)}")
        lines.append(new.rstrip() + "\n")
    return "".join(lines), changes


class Stack:
    def __init__(self, pam_dir: str) -> None:
        self.pam_dir = pam_dir

    def path(self, kind: str) -> str:
        return os.path.join(self.pam_dir, f"common-{kind}")

    def read(self) -> dict[str, str]:
        texts = {}
        for kind in TYPES:
            try:
                with open(self.path(kind)) as stream:
                    texts[kind] = stream.read()
            except FileNotFoundError:
                texts[kind] = ""
        return texts

    def write(self, kind: str, text: str) -> None:
        target = self.path(kind)
        fd, temp = tempfile.mkstemp(dir=self.pam_dir, prefix=".cityguard-")
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        shutil.copymode(target, temp)
        os.replace(temp, target)


def problems(params: dict, stacks: dict[str, str]) -> tuple[list[str], list[str]]:
    """(profile rules missing from the stack, option edits still to make)."""
    missing = []
    for profile, text in params["profiles"].items():
        missing += missing_profile_rules(profile, parse_profile_text(text), stacks)
    pending = []
    for edit in params["options"]:
        for kind in edit.get("types") or TYPES:
            pending += edit_options(stacks.get(kind, ""), kind, edit)[1]
    return missing, pending


def profiles_to_write(params: dict) -> dict[str, str]:
    """The profiles whose file is missing or differs from the wanted text."""
    changed = {}
    for name, text in params["profiles"].items():
        path = os.path.join(params["configs_dir"], name)
        try:
            with open(path) as stream:
                current = stream.read()
        except FileNotFoundError:
            current = None
        if current != text:
            changed[path] = text
    return changed


def write_file(path: str, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".cityguard-")
    with os.fdopen(fd, "w") as stream:
        stream.write(text)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "profiles": {"type": "dict", "default": {}},
            "options": {"type": "list", "elements": "dict", "default": []},
            "force": {"type": "bool", "default": False},
            "pam_dir": {"type": "path", "default": "/etc/pam.d"},
            "configs_dir": {"type": "path", "default": "/usr/share/pam-configs"},
        },
        supports_check_mode=True,
    )
    params = module.params
    stack = Stack(params["pam_dir"])
    before = stack.read()
    profiles = profiles_to_write(params)
    missing, pending = problems(params, before)
    if profiles:  # a changed profile re-enters the stack through pam-auth-update
        missing = [f"profile {path} written" for path in profiles] + missing
    if not missing and not pending:
        module.exit_json(changed=False)
    if module.check_mode:
        module.exit_json(changed=True, missing=missing, pending=pending,
                         diff={"before": "", "after": "".join(f"{p}\n" for p in missing + pending),
                               "before_header": "PAM stack", "after_header": "would change"})
    for path, text in profiles.items():
        write_file(path, text)
    output = ""
    if missing:
        argv = ["pam-auth-update", *(["--force"] if params["force"] else []),
                "--enable", *params["profiles"]]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            module.fail_json(msg=f"pam-auth-update failed: {output}")
    current = stack.read()
    changes = []
    for edit in params["options"]:
        for kind in edit.get("types") or TYPES:
            text, changed = edit_options(current[kind], kind, edit)
            if changed:
                stack.write(kind, text)
                current[kind] = text
                changes += changed
    missing_after, pending_after = problems(params, current)
    if missing_after or pending_after:
        refused = "Local modifications" in output
        module.fail_json(
            msg=("pam-auth-update kept /etc/pam.d/common-* as they are because of lines added "
                 "by hand; review them, then run `pam-auth-update --force` (or set "
                 "accounts_pam_force) — " if refused else "the PAM stack is still not as "
                 "required — ") + "; ".join(missing_after + pending_after),
            output=output,
        )
    diff = {
        "before": "".join(f"# common-{k}\n{before[k]}" for k in TYPES if before[k] != current[k]),
        "after": "".join(f"# common-{k}\n{current[k]}" for k in TYPES if before[k] != current[k]),
        "before_header": "PAM stack", "after_header": "PAM stack",
    }
    module.exit_json(changed=True, profiles=sorted(profiles), enabled=missing, edited=changes,
                     output=output, diff=diff)


if __name__ == "__main__":
    main()
