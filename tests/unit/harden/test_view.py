"""How harden results are shown when Ansible stopped before running anything."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from cityguard.ansible import PlaybookResult
from cityguard.ansible.diffs import unified_diff
from cityguard.core.exitcodes import ExitCode
from cityguard.harden.action import HardenOutcome
from cityguard.harden.view import harden_summary


def test_a_playbook_that_never_ran_shows_ansibles_reason(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_text(
        "\x1b[0;31mERROR! couldn't resolve module/action 'ansible.builtin.nope'\x1b[0m\n"
        "The error appears to be in '/p/roles/x/tasks/main.yml': line 3, column 3\n"
    )
    result = PlaybookResult(rc=4, status="failed", hosts={}, tasks=[], artifacts_dir=tmp_path)
    out = io.StringIO()
    harden_summary(Console(file=out, width=300), HardenOutcome("r1", result, ExitCode.PARTIAL, []))
    assert (
        "the playbook did not run (ansible rc=4): ERROR! couldn't resolve module/action "
        "'ansible.builtin.nope' | The error appears to be in"
    ) in out.getvalue()


def test_unified_diff_of_a_file_change() -> None:
    diff = {
        "before": "a\nb\n",
        "after": "a\nc\n",
        "before_header": "/etc/x",
        "after_header": "/etc/x",
    }
    assert unified_diff(diff).splitlines() == [
        "--- /etc/x",
        "+++ /etc/x",
        "@@ -1,2 +1,2 @@",
        " a",
        "-b",
        "+c",
    ]


def test_a_change_is_reported_against_the_selected_controls_only(tmp_path: Path) -> None:
    from cityguard.ansible import HostStats, TaskResult

    task = TaskResult(
        host="web1",
        task="Write the cityguard sshd drop-in",
        role="ssh",
        tags=["ssh", "CG-SSH-001", "CG-SSH-015"],
        action="ansible.builtin.template",
        status="changed",
    )
    result = PlaybookResult(
        rc=0,
        status="successful",
        hosts={"web1": HostStats(ok=1, changed=1)},
        tasks=[task],
        artifacts_dir=tmp_path,
    )
    out = io.StringIO()
    outcome = HardenOutcome("r1", result, ExitCode.OK, ["CG-SSH-001", "CG-SSH-002"])
    harden_summary(Console(file=out, width=300), outcome)
    assert "web1 CG-SSH-001: changed: Write the cityguard sshd drop-in" in out.getvalue()
    assert "CG-SSH-015" not in out.getvalue()


def test_an_interrupted_run_says_what_changed_and_that_the_rest_did_not_run(
    tmp_path: Path,
) -> None:
    from cityguard.ansible import TaskResult
    from cityguard.harden.action import exit_code_for

    changed = TaskResult(
        host="web1",
        task="Write the cityguard sshd drop-in",
        role="ssh",
        tags=["ssh", "CG-SSH-001"],
        action="cityguard_files",
        status="changed",
    )
    result = PlaybookResult(
        rc=254, status="canceled", hosts={}, tasks=[changed], artifacts_dir=tmp_path
    )
    assert exit_code_for(result) is ExitCode.INTERRUPTED
    out = io.StringIO()
    outcome = HardenOutcome("r1", result, ExitCode.INTERRUPTED, ["CG-SSH-001"])
    harden_summary(Console(file=out, width=300), outcome)
    text = out.getvalue()
    assert "interrupted (Ctrl-C)" in text
    assert "1 change(s) made before it stopped" in text
    assert "web1 CG-SSH-001: changed: Write the cityguard sshd drop-in" in text
    assert "did not run (ansible rc" not in text
