"""The command line on bad input: one line per problem, exit code 2, no traceback, no change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cityguard.config import content_root
from cli_process import cityguard

EXAMPLE = content_root() / "examples" / "site"


def test_bad_site_file_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    text = (site / "site.yml").read_text()
    text = text.replace("baseline: municipal-server", "baseline: no-such-baseline")
    text = text.replace("inventory: inventory.yml", "inventory: inventory.yml\nfirewall: strict")
    (site / "site.yml").write_text(text)
    state = tmp_path / "state"
    result = cityguard("check", "--site", str(site / "site.yml"), state=state)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # every problem in one run, in file order
    assert all(line.startswith(f"{site / 'site.yml'}:") for line in lines)
    assert "firewall: unknown key (allowed: " in lines[0]
    assert "baseline: unknown baseline 'no-such-baseline'" in lines[1]
    assert "Traceback" not in result.stderr + result.stdout
    assert not state.exists(), "bad input must change nothing"


def test_unknown_control_and_baseline_are_reported_together(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    text = (
        (site / "site.yml")
        .read_text()
        .replace("parameters: {}", "parameters:\n  CG-NOPE-001: {value: 1}")
    )
    (site / "site.yml").write_text(text.replace("baseline: municipal-server", "baseline: nope"))
    result = cityguard(
        "harden", "--check", "--site", str(site / "site.yml"), state=tmp_path / "state"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert any("baseline: unknown baseline 'nope'" in line for line in lines), lines
    assert any(
        "parameters.CG-NOPE-001" in line and "unknown control id" in line for line in lines
    ), lines
    assert "Traceback" not in result.stderr


def test_controls_outside_the_baseline_exit_2(tmp_path: Path) -> None:
    result = cityguard(
        "check",
        "--site",
        str(EXAMPLE / "site.yml"),
        "--controls",
        "CG-SSH-001,CG-XXX-999",
        state=tmp_path / "state",
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "--controls: not in baseline municipal-server: CG-XXX-999"


def test_missing_site_file_exits_2(tmp_path: Path) -> None:
    result = cityguard("check", "--site", str(tmp_path / "absent.yml"), state=tmp_path / "s")
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path / 'absent.yml'}: (document): file not found"


def test_without_site_every_command_reads_site_yml_in_the_working_directory(
    tmp_path: Path,
) -> None:
    """The default --site is ./site.yml for every command that takes the common options (the
    demo once set it to None for all of them: a traceback instead of this line)."""
    for command in (["check"], ["harden"], ["lab", "down"], ["drill", "status"]):
        result = cityguard(*command, state=tmp_path / "s", cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.strip() == "site.yml: (document): file not found", command


def test_an_empty_group_never_widens_to_every_host(tmp_path: Path) -> None:
    """`--limit dmz` with `dmz: {}`, or `--limit '!all'`, used to reach Ansible as an empty
    limit, which means every host. Refused before anything runs, for every host command."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    with (site / "inventory.yml").open("a") as inventory:
        inventory.write("    dmz: {}\n")
    state = tmp_path / "state"
    for command in ("harden", "check", "lab up"):
        for limit in ("dmz", "!all", "web,!web"):
            result = cityguard(
                *command.split(), "--site", str(site / "site.yml"), "--limit", limit, state=state
            )
            assert result.returncode == 2, (command, limit, result.stderr)
            assert result.stderr.strip().splitlines() == [
                f"{site / 'inventory.yml'}: limit: --limit '{limit}' selects no host; nothing to do"
            ]
            assert not state.exists(), "an empty selection must change nothing"


def test_an_empty_control_selection_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for value in ("", ","):
        result = cityguard(
            "harden", "--site", str(EXAMPLE / "site.yml"), "--controls", value, state=state
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == "--controls: selects no control"
        assert not state.exists()


def test_help_loads_no_heavy_library() -> None:
    """`cityguard --help` registers every command without importing what the commands use."""
    probe = (
        "import sys; from cityguard.cli.main import build_parser; build_parser(); "
        "print(' '.join(sorted(m for m in ('pydantic', 'rich', 'psycopg', 'ansible_runner', "
        "'yaml', 'boto3', 'keycloak', 'testinfra') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
