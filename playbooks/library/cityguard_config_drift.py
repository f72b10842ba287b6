#!/usr/bin/python
"""Ansible module: find the lines of other files that override cityguard's settings, and
disable them.

cityguard writes its settings to files of its own (an sshd drop-in, a sysctl.d file, a journald
drop-in), but what is in force is decided by every file the program reads, in its own order:

- `sshd`: sshd_config with its `Include`s expanded in place (globs in name order); the first
  value read for an option wins, and a `Match` block overrides it for the connections it names;
- `sysctl`: the *.conf files of the sysctl.d directories, a name in a later directory hiding
  the same name in an earlier one, read in name order; the last value of a key wins;
- `keyvalue`: as `sysctl`, for other `key = value` drop-in directories (pwquality.conf.d);
- `systemd`: a daemon's main file (e.g. journald.conf), then the *.conf files of its drop-in
  directories in name order (same hiding rule), in one `[section]`; the last value wins.

A line of another file that is in force over cityguard's own (read before it for sshd, after it
for the others, or inside an sshd `Match` block) and sets a managed key to another value is
turned into a comment naming the control, so the file stays where it is and the reason stays in
it. Lines that never take effect are left alone. The result lists every such line (`overrides`:
path, line number, key, value, wanted value, controls), the controls concerned
(`cityguard_changed_controls`) and one change per file and control (`cityguard_changes`), each
with its diff; with `backup`, the original of each changed file is kept (`backups`) for a
rollback.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_config_drift
short_description: Disable other files' lines that override cityguard's settings
options:
  format: {type: str, required: true, choices: [sshd, sysctl, systemd, keyvalue]}
  own: {description: cityguard's own file, type: path, required: true}
  main: {description: the main file (sshd, systemd), type: path}
  dirs: {description: drop-in directories, lowest precedence first, type: list, elements: path}
  section: {description: the ini section (systemd), type: str, default: ""}
  settings: {description: key -> the value cityguard sets, type: dict, required: true}
  at_most: {description: keys whose value may be any integer from 1 to the wanted one,
            type: list, elements: str, default: []}
  controls: {description: key -> the control id (or ids) the key serves, type: dict, default: {}}
  backup: {type: bool, default: false}
"""

# keyword, then whitespace or one "=" (with optional whitespace), then the arguments
SSHD_LINE = re.compile(r"^(\S+?)(?:\s*=\s*|\s+)(.*)$")
MARKER = "# cityguard ({controls}) disabled: "


class Line:
    """A setting line: where it is, what it sets, and the Match context it sits in (sshd)."""

    def __init__(self, path: str, number: int, key: str, value: str, context: str = "") -> None:
        self.path = path
        self.number = number
        self.key = key
        self.value = value
        self.context = context


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as stream:
            return stream.read().splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return []


def _normal(value: str) -> str:
    return " ".join(value.split())


# ------------------------------------------------------------------------------------- sshd


def sshd_lines(path: str, base: str, context: str = "", depth: int = 0) -> list[Line]:
    """Every option line sshd reads, in its order, Includes expanded where they stand."""
    found: list[Line] = []
    if depth > 16:
        return found
    for number, raw in enumerate(_read_lines(path), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        match = SSHD_LINE.match(text)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key == "match":
            context = "" if value.lower() == "all" else f"Match {value} ({path}:{number})"
            continue
        if key == "include":
            for pattern in value.split():
                full = pattern if pattern.startswith("/") else os.path.join(base, pattern)
                for included in sorted(glob.glob(full)):
                    found += sshd_lines(included, base, context, depth + 1)
            continue
        found.append(Line(path, number, key, value, context))
    return found


def sshd_overrides(params: dict) -> list[tuple[Line, str]]:
    settings = {k.lower(): str(v) for k, v in params["settings"].items()}
    at_most = {k.lower() for k in params["at_most"]}
    own = params["own"]
    lines = sshd_lines(params["main"], os.path.dirname(params["main"]))
    out: list[tuple[Line, str]] = []
    seen_own: set[str] = set()
    for line in lines:
        if line.key not in settings:
            continue
        wanted = settings[line.key]
        if line.path == own:
            if not line.context:
                seen_own.add(line.key)
            continue
        if _holds(line.value, wanted, line.key in at_most, case=False):
            continue
        # a global line read before cityguard's is the one in force; a Match line is in force
        # for the connections it names, wherever it is
        if line.context or line.key not in seen_own:
            out.append((line, wanted))
    return out


# ---------------------------------------------------------------------- sysctl and systemd


def ordered_dropins(dirs: list[str]) -> list[str]:
    """The *.conf files in force, in the order they are read (a later directory hides a name)."""
    winners: dict[str, str] = {}
    for directory in dirs:
        for path in glob.glob(os.path.join(directory, "*.conf")):
            winners[os.path.basename(path)] = path
    return [winners[name] for name in sorted(winners)]


def keyvalue_lines(path: str, fmt: str, section: str) -> list[Line]:
    found: list[Line] = []
    current = ""
    for number, raw in enumerate(_read_lines(path), 1):
        text = raw.strip()
        if not text or text[0] in "#;":
            continue
        if fmt == "systemd" and text.startswith("["):
            current = text.strip("[]").strip()
            continue
        if fmt == "systemd" and current != section:
            continue
        key, eq, value = text.partition("=")
        if not eq:
            continue
        key = key.strip()
        if fmt == "sysctl":
            key = key.lstrip("-").replace("/", ".")
        found.append(Line(path, number, key, value.strip()))
    return found


def keyvalue_overrides(params: dict) -> list[tuple[Line, str]]:
    fmt, own = params["format"], params["own"]
    settings = {k: str(v) for k, v in params["settings"].items()}
    files = ([params["main"]] if params.get("main") else []) + ordered_dropins(params["dirs"])
    out: list[tuple[Line, str]] = []
    after_own = False
    for path in files:
        if path == own:
            after_own = True
            continue
        if not after_own and own in files:
            continue  # read before cityguard's file: cityguard's value wins
        for line in keyvalue_lines(path, fmt, params["section"]):
            if line.key in settings and not _holds(line.value, settings[line.key], False, True):
                out.append((line, settings[line.key]))
    return out


def _holds(value: str, wanted: str, at_most: bool, case: bool) -> bool:
    if at_most:
        try:
            return 1 <= int(value) <= int(wanted)
        except ValueError:
            return False
    a, b = _normal(value), _normal(wanted)
    if a.lower() in _BOOLEAN and b.lower() in _BOOLEAN:  # yes, true, on and 1 say the same
        return _BOOLEAN[a.lower()] == _BOOLEAN[b.lower()]
    return a == b if case else a.lower() == b.lower()


_BOOLEAN = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}


# ------------------------------------------------------------------------------------ write


def _write(path: str, lines: list[str]) -> None:
    target = os.path.realpath(path)  # /etc/sysctl.d/99-sysctl.conf is a link to sysctl.conf
    info = os.stat(target)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".cityguard-")
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as stream:
        stream.write("\n".join(lines) + "\n")
    os.chown(temporary, info.st_uid, info.st_gid)
    os.chmod(temporary, info.st_mode & 0o7777)
    os.replace(temporary, target)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "format": {"type": "str", "required": True, "choices": ["sshd", "sysctl", "systemd", "keyvalue"]},
            "own": {"type": "path", "required": True},
            "main": {"type": "path"},
            "dirs": {"type": "list", "elements": "path", "default": []},
            "section": {"type": "str", "default": ""},
            "settings": {"type": "dict", "required": True},
            "at_most": {"type": "list", "elements": "str", "default": []},
            "controls": {"type": "dict", "default": {}},
            "backup": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["format"] in ("sshd", "systemd") and not params.get("main"):
        module.fail_json(msg=f"format {params['format']} needs main")
    found = sshd_overrides(params) if params["format"] == "sshd" else keyvalue_overrides(params)
    controls_of = {
        k.lower(): [v] if isinstance(v, str) else list(v) for k, v in params["controls"].items()
    }

    def controls(key: str) -> list[str]:
        return controls_of.get(key.lower(), [])

    by_path: dict[str, list[tuple[Line, str]]] = {}
    for line, wanted in found:
        by_path.setdefault(line.path, []).append((line, wanted))
    changes, diffs, backups = [], [], {}
    for path, entries in by_path.items():
        before = _read_lines(path)
        after = list(before)
        for line, _wanted in entries:
            ids = ",".join(controls(line.key)) or "cityguard"
            after[line.number - 1] = MARKER.format(controls=ids) + before[line.number - 1].strip()
        diff = {
            "before_header": path,
            "after_header": path,
            "before": "\n".join(before) + "\n",
            "after": "\n".join(after) + "\n",
        }
        diffs.append(diff)
        for control in sorted({c for line, _ in entries for c in controls(line.key)}):
            keys = sorted({line.key for line, _ in entries if control in controls(line.key)})
            changes.append({"control": control, "what": f"{path}: {', '.join(keys)}", "diff": diff})
        if not module.check_mode:
            try:
                if params["backup"]:
                    backup = f"{os.path.realpath(path)}.{int(time.time())}.cityguard~"
                    shutil.copy2(os.path.realpath(path), backup)
                    backups[path] = backup
                _write(path, after)
            except OSError as exc:
                ids = sorted({c for line, _ in entries for c in controls(line.key)})
                module.fail_json(
                    msg=f"{path} overrides {', '.join(ids)} "
                    f"({', '.join(sorted({line.key for line, _ in entries}))}) and cannot be "
                    f"changed: {exc.strerror or exc}",
                    overrides=[{"path": line.path, "line": line.number, "key": line.key}
                               for line, _ in entries],
                    backups=backups,
                )
    module.exit_json(
        changed=bool(found),
        overrides=[
            {
                "path": line.path,
                "line": line.number,
                "key": line.key,
                "value": line.value,
                "wanted": wanted,
                "context": line.context,
                "controls": controls(line.key),
            }
            for line, wanted in found
        ],
        cityguard_changed_controls=sorted({c for line, _ in found for c in controls(line.key)}),
        cityguard_changes=changes,
        backups=backups,
        diff=diffs,
    )


if __name__ == "__main__":
    main()
