"""Two real `cityguard harden` runs on one site at once: the second is refused, naming the
holder, and changes nothing (cityguard.core.sitelock).

The first run is limited to db1; web1 is drifted beforehand. Had the second run (all hosts) done
anything, web1 would be repaired; it must still be drifted when both have ended.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cityguard.core.sitelock import LOCK_FILE
from cityguard.evidence import SqliteStore

pytestmark = pytest.mark.integration

CITYGUARD = Path(sys.executable).parent / "cityguard"
#: How long the first run may take to take the lock, and to finish.
LOCK_WAIT_S = 60
HARDEN_WAIT_S = 900


def cityguard(lab, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "CITYGUARD_STATE": str(lab.state_dir)}
    return subprocess.Popen(
        [str(CITYGUARD), *args, "--site", str(lab.site_file), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def holder_pid(lock_file: Path) -> int | None:
    try:
        return int(json.loads(lock_file.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def harden_runs(lab) -> list[str]:  # type: ignore[no-untyped-def]
    with SqliteStore(lab.state_dir / "evidence.sqlite") as store:
        return [r.id for r in store.list_runs(limit=1000, command="harden")]


def test_a_second_harden_is_refused_naming_the_first_and_changes_nothing(lab):  # type: ignore[no-untyped-def]
    config = "/etc/ssh/sshd_config"
    mode_before = lab.ssh("web1", f"stat -c %a {config}").strip()
    lab.ssh("web1", f"chmod 0644 {config}")  # CG-SSH-004 drift: harden would make it 0600
    lock_file = lab.state_dir / LOCK_FILE
    runs_dir = lab.state_dir / "runs"
    dirs_before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    evidence_before = harden_runs(lab) if (lab.state_dir / "evidence.sqlite").exists() else []

    first = cityguard(lab, "harden", "--limit", "db1")
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while holder_pid(lock_file) != first.pid:
            assert first.poll() is None, "the first harden ended before taking the lock"
            assert time.monotonic() < deadline, "the first harden never took the site's lock"
            time.sleep(0.05)

        second = cityguard(lab, "harden")
        _, refusal = second.communicate(timeout=120)
        assert first.poll() is None, "the first run ended too soon: the runs did not overlap"
        first_out, first_err = first.communicate(timeout=HARDEN_WAIT_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    assert second.returncode == 3, refusal
    assert refusal.strip().splitlines() == [refusal.strip()], "one line"
    pattern = (
        rf"error: site ventspils-example is busy: 'harden' \(pid {first.pid}, user \S+, "
        rf"since \S+\) holds {re.escape(str(lock_file))}; wait for it to end, then run "
        r"'harden' again"
    )
    assert re.fullmatch(pattern, refusal.strip()), refusal
    assert first.returncode == 0, first_out + first_err

    # the second run changed nothing: web1 still drifted, one new run directory and evidence
    # run (the first's), and the lock free again
    assert lab.ssh("web1", f"stat -c %a {config}").strip() == "644"
    new_dirs = set(runs_dir.iterdir()) - dirs_before
    assert len(new_dirs) == 1 and next(iter(new_dirs)).name.endswith("-harden"), new_dirs
    assert len(harden_runs(lab)) == len(evidence_before) + 1
    assert lock_file.read_text() == ""
    lab.ssh("web1", f"chmod {mode_before} {config}")
