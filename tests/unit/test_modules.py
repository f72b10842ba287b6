"""The custom modules in playbooks/library/, run the way Ansible runs them.

Each module is started as `python module.py args.json`, with the arguments Ansible would send
(`ANSIBLE_MODULE_ARGS`, check and diff mode), against files under a temporary directory; the
JSON it prints is the task result. `cityguard_units` needs systemd, which is not PID 1 here: its
planning function is tested directly and its main run against a fake `systemctl` on PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cityguard.config import content_root

LIBRARY = content_root() / "playbooks" / "library"

# chown to root (and away from it) needs root; the tests are meant to run as root
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sets file owners: needs root")

NOBODY = 4242  # a uid and gid no account has


def run_module(
    name: str,
    args: dict[str, Any],
    workdir: Path,
    *,
    check: bool = False,
    diff: bool = True,
    env: dict[str, str] | None = None,
    preexec: Callable[[], Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run a library module as Ansible does; its exit code and printed result."""
    args_file = workdir / f"{name}-args.json"
    module_args = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
    done = subprocess.run(
        [sys.executable, str(LIBRARY / f"{name}.py"), str(args_file)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec,
    )
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{name} printed no JSON result:\n{done.stdout}\n{done.stderr}")
    return done.returncode, result


def load_library_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, LIBRARY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def owner_of(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


# --- cityguard_files ------------------------------------------------------------------------


def files(tmp_path: Path, entries: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    rc, result = run_module("cityguard_files", {"files": entries}, tmp_path, **kwargs)
    assert rc == 0, result
    assert not result.get("failed"), result
    return result


@needs_root
def test_files_writes_a_new_file_with_its_mode_and_creates_the_parents(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "conf.d" / "cityguard.conf"
    result = files(tmp_path, [{"path": str(target), "content": "a = 1\n", "mode": "0640"}])
    assert result["changed"] is True
    assert result["changed_paths"] == [str(target)]
    assert target.read_text() == "a = 1\n"
    assert mode_of(target) == 0o640
    assert owner_of(target) == (0, 0)
    assert mode_of(target.parent) == 0o755
    assert result["diff"] == [
        {
            "before_header": str(target),
            "after_header": str(target),
            "before": "",
            "after": "a = 1\n",
        }
    ]


@needs_root
def test_files_creates_parents_0755_whatever_the_umask(tmp_path: Path) -> None:
    # the login umask cityguard sets itself (CG-ACC-010) is 027; the module runs under it
    target = tmp_path / "new" / "deeper" / "file"
    files(
        tmp_path,
        [{"path": str(target), "content": "x\n", "mode": "0644"}],
        preexec=lambda: os.umask(0o027),
    )
    assert mode_of(tmp_path / "new") == 0o755
    assert mode_of(tmp_path / "new" / "deeper") == 0o755
    assert mode_of(target) == 0o644


@needs_root
def test_files_second_identical_run_changes_nothing(tmp_path: Path) -> None:
    entry = {"path": str(tmp_path / "f"), "content": "same\n", "mode": "0600"}
    assert files(tmp_path, [entry])["changed"] is True
    before = (tmp_path / "f").stat()
    again = files(tmp_path, [entry])
    assert again["changed"] is False
    assert again["changed_paths"] == []
    assert again["diff"] == []
    assert again["cityguard_changed_controls"] == []
    assert (tmp_path / "f").stat().st_ino == before.st_ino  # not even rewritten


def test_files_a_link_to_a_compliant_file_is_left_alone(tmp_path: Path) -> None:
    """The link's own mode (0777) is not the file's: judging it would change every run."""
    (tmp_path / "real").write_text("same\n")
    (tmp_path / "real").chmod(0o644)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    result = files(tmp_path, [{"path": str(tmp_path / "link"), "content": "same\n"}])
    assert result["changed"] is False
    assert (tmp_path / "link").is_symlink()


def test_files_a_bad_mode_is_one_clear_line(tmp_path: Path) -> None:
    entry = {"path": str(tmp_path / "f"), "content": "x", "mode": "rw-r--r--"}
    rc, result = run_module("cityguard_files", {"files": [entry]}, tmp_path)
    assert rc != 0 and result["failed"] is True
    assert result["msg"] == f"{tmp_path / 'f'}: mode 'rw-r--r--' is not an octal number"
    assert not (tmp_path / "f").exists()


@needs_root
def test_files_repairs_owner_and_mode_only_and_diffs_the_attributes(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("kept\n")
    os.chown(target, NOBODY, NOBODY)
    target.chmod(0o666)
    inode = target.stat().st_ino
    result = files(tmp_path, [{"path": str(target), "content": "kept\n", "mode": "0640"}])
    assert result["changed"] is True
    assert owner_of(target) == (0, 0)
    assert mode_of(target) == 0o640
    assert target.read_text() == "kept\n"
    assert target.stat().st_ino == inode  # repaired in place, not replaced
    (diff,) = result["diff"]
    assert diff["before"] == f"owner {NOBODY}, group {NOBODY}, mode 0666\n"
    assert diff["after"] == "owner root, group root, mode 0640\n"


@needs_root
def test_files_check_mode_reports_the_change_and_the_diff_but_writes_nothing(
    tmp_path: Path,
) -> None:
    existing = tmp_path / "existing"
    existing.write_text("old\n")
    existing.chmod(0o644)
    fresh = tmp_path / "missing-dir" / "fresh"
    result = files(
        tmp_path,
        [
            {"path": str(existing), "content": "new\n", "mode": "0600", "control": "CG-A"},
            {"path": str(fresh), "content": "hello\n", "control": "CG-B"},
        ],
        check=True,
    )
    assert result["changed"] is True
    assert result["changed_paths"] == [str(existing), str(fresh)]
    assert result["cityguard_changed_controls"] == ["CG-A", "CG-B"]
    assert [(d["before"], d["after"]) for d in result["diff"]] == [
        ("old\n", "new\n"),
        ("", "hello\n"),
    ]
    assert existing.read_text() == "old\n"
    assert mode_of(existing) == 0o644
    assert not fresh.parent.exists()
    assert "backups" not in result


@needs_root
def test_files_paths_writes_the_same_content_to_each(tmp_path: Path) -> None:
    targets = [tmp_path / "one", tmp_path / "sub" / "two"]
    result = files(
        tmp_path,
        [{"paths": [str(t) for t in targets], "content": "shared\n", "mode": "0600"}],
    )
    assert result["changed_paths"] == [str(t) for t in targets]
    for target in targets:
        assert target.read_text() == "shared\n"
        assert mode_of(target) == 0o600


@needs_root
def test_files_state_absent_removes_and_then_is_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "gone"
    target.write_text("remove me\n")
    entry = {"path": str(target), "state": "absent", "control": "CG-X"}
    result = files(tmp_path, [entry])
    assert result["changed"] is True
    assert result["cityguard_changed_controls"] == ["CG-X"]
    assert not target.exists()
    assert files(tmp_path, [entry])["changed"] is False


@needs_root
def test_files_failed_validation_changes_no_file_at_all(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.write_text("good old\n")
    second.write_text("good old\n")
    first.chmod(0o644)
    entries = [
        {"path": str(first), "content": "good new\n", "validate": "grep -q good %s"},
        {"path": str(second), "content": "bad new\n", "validate": "grep -q good %s"},
    ]
    rc, result = run_module("cityguard_files", {"files": entries}, tmp_path)
    assert rc != 0
    assert result["failed"] is True
    assert str(second) in result["msg"]
    assert "grep -q good" in result["msg"]
    assert "\n" not in result["msg"].strip()
    assert first.read_text() == "good old\n"  # validated fine, still not written
    assert second.read_text() == "good old\n"
    assert mode_of(first) == 0o644
    assert list(tmp_path.glob(".cityguard-*")) == []


@needs_root
def test_files_validate_sees_the_new_content(tmp_path: Path) -> None:
    target = tmp_path / "checked"
    entry = {"path": str(target), "content": "good\n", "validate": "grep -q '^good$' %s"}
    assert files(tmp_path, [entry])["changed"] is True
    assert target.read_text() == "good\n"
    assert list(tmp_path.glob(".cityguard-*")) == []


@needs_root
def test_files_backup_keeps_the_replaced_content(tmp_path: Path) -> None:
    target = tmp_path / "sudoers"
    target.write_text("old rules\n")
    result = files(tmp_path, [{"path": str(target), "content": "new rules\n", "backup": True}])
    assert target.read_text() == "new rules\n"
    backup = Path(result["backups"][str(target)])
    assert backup.parent == tmp_path
    assert backup.name.startswith("sudoers.")
    assert backup.name.endswith(".cityguard~")
    assert backup.read_text() == "old rules\n"


@needs_root
def test_files_backup_of_a_new_file_is_none(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = files(tmp_path, [{"path": str(target), "content": "x\n", "backup": True}])
    assert result["backups"] == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cityguard_files-args.json", "new"]


@needs_root
def test_files_reports_only_the_controls_whose_files_changed(tmp_path: Path) -> None:
    compliant = tmp_path / "compliant"
    compliant.write_text("ok\n")
    compliant.chmod(0o644)
    os.chown(compliant, 0, 0)
    result = files(
        tmp_path,
        [
            {"path": str(compliant), "content": "ok\n", "control": "CG-OK"},
            {"path": str(tmp_path / "drifted"), "content": "x\n", "control": "CG-DRIFT"},
            {"path": str(tmp_path / "uncontrolled"), "content": "y\n"},
        ],
    )
    assert result["cityguard_changed_controls"] == ["CG-DRIFT"]
    assert result["changed_paths"] == [str(tmp_path / "drifted"), str(tmp_path / "uncontrolled")]


def test_files_content_is_required_unless_absent(tmp_path: Path) -> None:
    rc, result = run_module("cityguard_files", {"files": [{"path": str(tmp_path / "f")}]}, tmp_path)
    assert rc != 0
    assert result["msg"] == f"{tmp_path / 'f'}: content is required unless state is absent"
    assert not (tmp_path / "f").exists()


# --- cityguard_units ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def units_module() -> ModuleType:
    return load_library_module("cityguard_units")


def unit(name: str = "demo.service", **wanted: Any) -> dict[str, Any]:
    # AnsibleModule fills every option left out with None
    return {"name": name, "enabled": None, "state": None, "masked": None, **wanted}


@pytest.mark.parametrize(
    ("wanted", "state", "steps"),
    [
        pytest.param(
            {"enabled": True},
            {"UnitFileState": "disabled", "ActiveState": "inactive"},
            [["enable", "demo.service"]],
            id="enable-disabled",
        ),
        pytest.param(
            {"enabled": True},
            {"UnitFileState": "static", "ActiveState": "inactive"},
            [],
            id="static-counts-as-enabled",
        ),
        pytest.param(
            {"enabled": False},
            {"UnitFileState": "enabled", "ActiveState": "inactive"},
            [["disable", "demo.service"]],
            id="disable-enabled",
        ),
        pytest.param(
            {"masked": True},
            {"LoadState": "loaded", "UnitFileState": "enabled", "ActiveState": "inactive"},
            [["mask", "demo.service"]],
            id="mask",
        ),
        pytest.param(
            {"masked": True},
            {"LoadState": "masked", "UnitFileState": "masked", "ActiveState": "inactive"},
            [],
            id="already-masked",
        ),
        pytest.param(
            {"state": "stopped"},
            {"UnitFileState": "enabled", "ActiveState": "active"},
            [["stop", "demo.service"]],
            id="stop-active",
        ),
        pytest.param(
            {"state": "started"},
            {"UnitFileState": "enabled", "ActiveState": "failed"},
            [["start", "demo.service"]],
            id="start-failed",
        ),
        pytest.param(
            {"masked": False, "enabled": True, "state": "started"},
            {"LoadState": "masked", "UnitFileState": "masked", "ActiveState": "inactive"},
            [["unmask", "demo.service"], ["enable", "demo.service"], ["start", "demo.service"]],
            id="unmask-before-enable",
        ),
        pytest.param(
            {"enabled": True, "state": "started", "masked": False},
            {"LoadState": "loaded", "UnitFileState": "enabled", "ActiveState": "active"},
            [],
            id="nothing-to-do",
        ),
        pytest.param(
            {"enabled": False, "state": "stopped"},
            {"LoadState": "loaded", "UnitFileState": "disabled", "ActiveState": "inactive"},
            [],
            id="nothing-to-do-stopped",
        ),
    ],
)
def test_units_actions(
    units_module: ModuleType,
    wanted: dict[str, Any],
    state: dict[str, str],
    steps: list[list[str]],
) -> None:
    assert units_module.actions(unit(**wanted), state) == steps


FAKE_SYSTEMCTL = """\
import json, os, sys

# stands in for systemctl: `show` prints the canned properties of the units asked for, in the
# order asked (not-found for any other, as systemctl does); any other command is only logged
args = sys.argv[1:]
if args[0] == "show":
    known = json.loads(os.environ["FAKE_SYSTEMCTL_UNITS"])
    names = args[args.index("--") + 1 :]
    blank = {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}
    blocks = [
        "\\n".join(f"{k}={v}" for k, v in {"Id": n, **known.get(n, blank)}.items())
        for n in names
    ]
    print("\\n\\n".join(blocks))
else:
    with open(os.environ["FAKE_SYSTEMCTL_LOG"], "a") as log:
        print(" ".join(args), file=log)
"""

# what systemd knows of each unit
DISABLED = {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "disabled"}
SYSTEMD = {"chrony.service": DISABLED, "ntp.service": DISABLED}


def run_units(
    tmp_path: Path, units: list[dict[str, Any]], check: bool = False
) -> tuple[int, dict[str, Any], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.write_text(f"#!{sys.executable}\n{FAKE_SYSTEMCTL}")
    fake.chmod(0o755)
    log = tmp_path / "log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_SYSTEMCTL_UNITS": json.dumps(SYSTEMD),
        "FAKE_SYSTEMCTL_LOG": str(log),
    }
    rc, result = run_module("cityguard_units", {"units": units}, tmp_path, check=check, env=env)
    return rc, result, log.read_text().splitlines()


UNITS = [
    {"name": "chrony.service", "enabled": True, "state": "started", "control": "CG-TIME-1"},
    {"name": "ntp.service", "enabled": False, "state": "stopped", "control": "CG-TIME-2"},
    {"name": "absent.service", "enabled": False, "optional": True, "control": "CG-TIME-3"},
]


def test_units_acts_only_on_units_that_differ(tmp_path: Path) -> None:
    rc, result, calls = run_units(tmp_path, UNITS)
    assert rc == 0, result
    assert result["changed"] is True
    assert result["actions"] == ["enable chrony.service", "start chrony.service"]
    assert result["cityguard_changed_controls"] == ["CG-TIME-1"]
    assert result["diff"]["after"] == "systemctl enable chrony.service\n" + (
        "systemctl start chrony.service\n"
    )
    assert calls == ["enable chrony.service", "start chrony.service"]


def test_units_check_mode_runs_no_systemctl_action(tmp_path: Path) -> None:
    rc, result, calls = run_units(tmp_path, UNITS, check=True)
    assert rc == 0, result
    assert result["actions"] == ["enable chrony.service", "start chrony.service"]
    assert calls == []


def test_units_missing_unit_fails_unless_optional(tmp_path: Path) -> None:
    wanted = [
        {"name": "ntp.service", "enabled": False},
        {"name": "absent.service", "enabled": True},
    ]
    rc, result, calls = run_units(tmp_path, wanted)
    assert rc != 0
    assert result["msg"] == "no such unit: absent.service"
    assert calls == []


def test_units_a_unit_wanted_masked_may_be_missing(tmp_path: Path) -> None:
    rc, result, calls = run_units(tmp_path, [{"name": "absent.service", "masked": True}])
    assert rc == 0, result
    assert result["actions"] == ["mask absent.service"]
    assert calls == ["mask absent.service"]


# --- cityguard_file_modes -------------------------------------------------------------------


def file_modes(
    tmp_path: Path, controls: dict[str, Any], **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    args = {"controls": controls, "sticky_bit_control": ""}  # never walk the real filesystems
    return run_module("cityguard_file_modes", args, tmp_path, **kwargs)


def spec(mode: str, **more: Any) -> dict[str, Any]:
    return {"owner": "root", "groups": ["root"], "mode": mode, **more}


def make(path: Path, mode: int, uid: int = 0, gid: int = 0) -> Path:
    path.write_text("secret\n")
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


@needs_root
def test_file_modes_mode_is_a_ceiling(tmp_path: Path) -> None:
    wide = make(tmp_path / "wide", 0o644)
    strict = make(tmp_path / "strict", 0o400)
    rc, result = file_modes(
        tmp_path,
        {"CG-WIDE": {str(wide): spec("0600")}, "CG-STRICT": {str(strict): spec("0600")}},
    )
    assert rc == 0, result
    assert mode_of(wide) == 0o600
    assert mode_of(strict) == 0o400  # stricter than the ceiling: never loosened
    assert result["changed"] is True
    assert result["changes"] == {str(wide): "mode 0644 -> 0600"}
    assert result["cityguard_changed_controls"] == ["CG-WIDE"]


@needs_root
def test_file_modes_repairs_owner_and_group_and_then_is_unchanged(tmp_path: Path) -> None:
    foreign = make(tmp_path / "foreign", 0o640, uid=NOBODY, gid=NOBODY)
    controls = {"CG-OWN": {str(foreign): spec("0640")}}
    rc, result = file_modes(tmp_path, controls)
    assert rc == 0, result
    assert owner_of(foreign) == (0, 0)
    assert mode_of(foreign) == 0o640
    assert result["changes"] == {str(foreign): f"owner {NOBODY} -> root, group {NOBODY} -> root"}
    rc, again = file_modes(tmp_path, controls)
    assert rc == 0, again
    assert again["changed"] is False
    assert again["cityguard_changed_controls"] == []


@needs_root
def test_file_modes_glob_and_check_mode(tmp_path: Path) -> None:
    keys = [make(tmp_path / f"ssh_host_{kind}_key", 0o644) for kind in ("rsa", "ed25519")]
    make(tmp_path / "ssh_host_rsa_key.pub", 0o644)
    rc, result = file_modes(
        tmp_path, {"CG-KEYS": {str(tmp_path / "ssh_host_*_key"): spec("0600")}}, check=True
    )
    assert rc == 0, result
    assert result["changed"] is True
    assert sorted(result["changes"]) == sorted(str(k) for k in keys)
    assert result["cityguard_changed_controls"] == ["CG-KEYS"]
    assert f"{keys[0]}: mode 0644 -> 0600\n" in result["diff"]["after"]
    assert all(mode_of(k) == 0o644 for k in keys)  # check mode: nothing touched


@needs_root
def test_file_modes_missing_path_fails_unless_optional(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    rc, result = file_modes(tmp_path, {"CG-MISSING": {str(missing): spec("0600")}})
    assert rc != 0
    assert result["failed"] is True
    assert result["msg"] == f"{missing} does not exist (and is not optional)"

    rc, result = file_modes(
        tmp_path,
        {
            "CG-OPTIONAL": {
                str(missing): spec("0600", optional=True),
                str(tmp_path / "none-*"): spec("0600", optional=True),
            }
        },
    )
    assert rc == 0, result
    assert result["changed"] is False
    assert result["cityguard_changed_controls"] == []
