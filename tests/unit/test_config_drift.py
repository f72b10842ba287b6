"""cityguard_config_drift: the lines of other files that override cityguard's own settings,
found in each program's reading order and disabled; run as Ansible runs the module."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from test_modules import run_module

SSHD = {"PermitRootLogin": "no", "MaxAuthTries": "4", "X11Forwarding": "no"}
CONTROLS = {
    "PermitRootLogin": ["CG-SSH-001"],
    "MaxAuthTries": ["CG-SSH-003"],
    "X11Forwarding": ["CG-SSH-013"],
}


def sshd_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    etc = tmp_path / "ssh"
    dropins = etc / "sshd_config.d"
    dropins.mkdir(parents=True)
    main = etc / "sshd_config"
    # Debian's layout: the Include first, then the distribution's own values
    main.write_text(f"Include {dropins}/*.conf\nX11Forwarding yes\nUsePAM yes\n")
    own = dropins / "00-cityguard.conf"
    own.write_text("PermitRootLogin no\nMaxAuthTries 4\nX11Forwarding no\n")
    return main, dropins, own


def sshd_args(main: Path, own: Path) -> dict[str, object]:
    return {
        "format": "sshd",
        "main": str(main),
        "own": str(own),
        "settings": SSHD,
        "at_most": ["MaxAuthTries"],
        "controls": CONTROLS,
    }


def test_sshd_a_drop_in_sorting_first_and_a_weakening_match_block_are_disabled(
    tmp_path: Path,
) -> None:
    main, dropins, own = sshd_tree(tmp_path)
    early = dropins / "00-a-local.conf"
    early.write_text("PermitRootLogin yes\nMaxAuthTries 3\n")
    late = dropins / "50-late.conf"
    late.write_text("PermitRootLogin yes\n")  # read after cityguard's: never in force
    match = dropins / "60-match.conf"
    match.write_text(
        "Match Address 10.0.0.0/8\n  PermitRootLogin yes\n  MaxAuthTries 2\n"
        "Match User backup\n  X11Forwarding yes\n"
    )
    rc, result = run_module("cityguard_config_drift", sshd_args(main, own), tmp_path)
    assert rc == 0 and result["changed"]
    found = {(Path(o["path"]).name, o["line"], o["key"]) for o in result["overrides"]}
    assert found == {
        ("00-a-local.conf", 1, "permitrootlogin"),  # sorts before 00-cityguard.conf
        ("60-match.conf", 2, "permitrootlogin"),
        ("60-match.conf", 5, "x11forwarding"),
    }  # MaxAuthTries 3 and 2 are within the limit; the late file and sshd_config never count
    assert early.read_text() == (
        "# cityguard (CG-SSH-001) disabled: PermitRootLogin yes\nMaxAuthTries 3\n"
    )
    assert "# cityguard (CG-SSH-001) disabled: PermitRootLogin yes" in match.read_text()
    assert late.read_text() == "PermitRootLogin yes\n"
    assert "X11Forwarding yes" in main.read_text()
    assert result["cityguard_changed_controls"] == ["CG-SSH-001", "CG-SSH-013"]
    assert {
        (c["control"], Path(c["what"].split(":")[0]).name) for c in result["cityguard_changes"]
    } == {
        ("CG-SSH-001", "00-a-local.conf"),
        ("CG-SSH-001", "60-match.conf"),
        ("CG-SSH-013", "60-match.conf"),
    }
    rc, again = run_module("cityguard_config_drift", sshd_args(main, own), tmp_path)
    assert rc == 0 and not again["changed"] and again["overrides"] == []


def test_sshd_check_mode_reports_and_writes_nothing(tmp_path: Path) -> None:
    main, dropins, own = sshd_tree(tmp_path)
    early = dropins / "00-a-local.conf"
    early.write_text("PermitRootLogin=yes\n")
    rc, result = run_module("cityguard_config_drift", sshd_args(main, own), tmp_path, check=True)
    assert rc == 0 and result["changed"] and len(result["overrides"]) == 1
    assert early.read_text() == "PermitRootLogin=yes\n"
    assert result["diff"][0]["after"].startswith("# cityguard (CG-SSH-001) disabled:")


def test_sshd_a_value_set_in_sshd_config_above_the_include_is_disabled(tmp_path: Path) -> None:
    main, _, own = sshd_tree(tmp_path)
    main.write_text("PermitRootLogin prohibit-password\n" + main.read_text())
    rc, result = run_module("cityguard_config_drift", sshd_args(main, own), tmp_path)
    assert rc == 0 and [o["line"] for o in result["overrides"]] == [1]
    assert main.read_text().startswith("# cityguard (CG-SSH-001) disabled: PermitRootLogin")


def sysctl_dirs(tmp_path: Path) -> tuple[list[str], Path]:
    dirs = [tmp_path / "usr-lib", tmp_path / "run", tmp_path / "etc"]
    for directory in dirs:
        directory.mkdir()
    own = dirs[2] / "99-zz-cityguard.conf"
    own.write_text("net.ipv4.conf.all.accept_redirects = 0\nnet.ipv4.ip_forward = 0\n")
    return [str(d) for d in dirs], own


def sysctl_args(dirs: list[str], own: Path) -> dict[str, object]:
    return {
        "format": "sysctl",
        "dirs": dirs,
        "own": str(own),
        "settings": {"net.ipv4.conf.all.accept_redirects": 0, "net.ipv4.ip_forward": 0},
        "controls": {
            "net.ipv4.conf.all.accept_redirects": ["CG-NET-001"],
            "net.ipv4.ip_forward": ["CG-NET-010"],
        },
    }


def test_sysctl_a_later_file_is_disabled_an_earlier_one_left_alone(tmp_path: Path) -> None:
    dirs, own = sysctl_dirs(tmp_path)
    early = Path(dirs[2]) / "10-early.conf"
    early.write_text("net.ipv4.ip_forward = 1\n")
    later = Path(dirs[1]) / "99-zzz-local.conf"  # /run, but its name sorts after cityguard's
    later.write_text("# local\nnet/ipv4/conf/all/accept_redirects=1\n-net.ipv4.ip_forward = 0\n")
    rc, result = run_module("cityguard_config_drift", sysctl_args(dirs, own), tmp_path)
    assert rc == 0 and result["changed"]
    assert [(o["key"], o["line"], o["value"]) for o in result["overrides"]] == [
        ("net.ipv4.conf.all.accept_redirects", 2, "1")
    ]
    assert later.read_text().splitlines()[1] == (
        "# cityguard (CG-NET-001) disabled: net/ipv4/conf/all/accept_redirects=1"
    )
    assert early.read_text() == "net.ipv4.ip_forward = 1\n"
    assert [c["control"] for c in result["cityguard_changes"]] == ["CG-NET-001"]


def test_sysctl_sysctl_conf_through_its_link_is_edited_in_place(tmp_path: Path) -> None:
    dirs, own = sysctl_dirs(tmp_path)
    target = tmp_path / "sysctl.conf"
    target.write_text("net.ipv4.ip_forward=1\n")
    link = Path(dirs[2]) / "99-zzzz-sysctl.conf"
    link.symlink_to(target)
    rc, result = run_module("cityguard_config_drift", sysctl_args(dirs, own), tmp_path)
    assert rc == 0 and result["changed"]
    assert link.is_symlink() and target.read_text().startswith("# cityguard (CG-NET-010)")


def test_systemd_a_later_journald_drop_in_is_disabled_in_its_section_only(tmp_path: Path) -> None:
    main = tmp_path / "journald.conf"
    main.write_text("[Journal]\nStorage=volatile\n")  # read first: the drop-in wins over it
    dropins = tmp_path / "journald.conf.d"
    dropins.mkdir()
    own = dropins / "60-cityguard.conf"
    own.write_text("[Journal]\nStorage=persistent\nCompress=yes\n")
    later = dropins / "70-local.conf"
    later.write_text("[Other]\nStorage=volatile\n[Journal]\nStorage=volatile\nCompress=yes\n")
    args = {
        "format": "systemd",
        "main": str(main),
        "dirs": [str(dropins)],
        "section": "Journal",
        "own": str(own),
        "settings": {"Storage": "persistent", "Compress": "yes"},
        "controls": {"Storage": ["CG-LOG-001"], "Compress": ["CG-LOG-001"]},
    }
    rc, result = run_module("cityguard_config_drift", args, tmp_path)
    assert rc == 0 and [(o["line"], o["key"]) for o in result["overrides"]] == [(4, "Storage")]
    assert later.read_text().splitlines()[1] == "Storage=volatile"  # another section
    assert main.read_text() == "[Journal]\nStorage=volatile\n"


def test_files_reports_each_changed_key_against_its_own_controls(tmp_path: Path) -> None:
    """One sysctl file serves 20 controls: a changed key is one change of its own control."""
    path = tmp_path / "99-zz-cityguard.conf"
    path.write_text("# managed\na.b = 1\nc.d = 0\n")
    entry = {
        "path": str(path),
        "content": "# managed\na.b = 0\nc.d = 0\ne.f = 2\n",
        "owner": "root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name,
        "group": "root" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name,
        "key_controls": {"a.b": ["CG-NET-001"], "c.d": ["CG-NET-002"], "e.f": ["CG-KRN-001"]},
    }
    rc, result = run_module("cityguard_files", {"files": [entry]}, tmp_path, check=True)
    assert rc == 0 and result["changed"]
    assert [(c["control"], c["what"].split(": ")[1]) for c in result["cityguard_changes"]] == [
        ("CG-NET-001", "a.b"),
        ("CG-KRN-001", "e.f"),
    ]
    assert result["cityguard_changed_controls"] == ["CG-KRN-001", "CG-NET-001"]
    assert result["cityguard_changes"][0]["diff"]["after"] == "a.b = 0\n"
