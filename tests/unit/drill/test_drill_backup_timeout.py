"""A backup's time limit: restic's retry lines counted, the one-line message, the clock that
gives each call what is left, the plan key and the --timeout option (no S3 server needed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityguard import cli
from cityguard.config import content_root
from cityguard.config.errors import ConfigError
from cityguard.config.inventory import load_inventory
from cityguard.core.process import TAIL_LINES, ProcessError, run
from cityguard.core.secrets import SecretRef, forget_secrets
from cityguard.drill import restic
from cityguard.drill.action import BackupClock
from cityguard.drill.plan import load_plans
from cityguard.drill.runner import Restic, timed_out

SITE = content_root() / "examples" / "site"
INVENTORY = load_inventory(SITE / "inventory.yml")

# what restic 0.19.1 wrote on standard error when its S3 server was stopped mid-backup
URL = "http://127.0.0.1:19555/exp/p/data/79/798e3df6c9d179bbdcfb563674fa5bb370a42c59a867fa486"
SAVE = (
    "Save(<data/798e3df6c9>) returned error, retrying after 1.009245942s: client.PutObject: "
    f'Put "{URL}": dial tcp 127.0.0.1:19555: connect: connection refused'
)
STAT = (
    "Stat(<lock/c1a8a8332f>) returned error, retrying after 513.296954ms: Stat: "
    'Head "http://127.0.0.1:19555/exp/p/locks/c1a8": dial tcp 127.0.0.1:19555: i/o timeout'
)
STATUS = '{"message_type":"status","seconds_elapsed":3,"bytes_done":161710435}'


def test_retry_lines_are_counted_and_the_last_error_kept_without_urls() -> None:
    lines = [STATUS, SAVE, "signal terminated received, cleaning up ", STAT, STATUS]
    found = restic.parse_retries(lines)
    assert found == restic.Retries(2, "Stat: dial tcp 127.0.0.1:19555: i/o timeout", complete=True)


def test_no_retry_lines_is_no_retries() -> None:
    found = restic.parse_retries([STATUS, "error while unlocking: context canceled"])
    assert found.count == 0 and found.last_error is None


def test_lines_without_a_request_or_a_retry_are_not_counted() -> None:
    assert restic.parse_retries(["returned error, retrying after 1s: x"]).count == 0
    assert restic.parse_retries(["Save(<data/1>) returned error: no retry"]).count == 0


def test_short_backend_error_drops_the_object_url_only() -> None:
    text = f'client.PutObject: Put "{URL}": dial tcp 10.0.0.5:9000: connect: no route to host'
    assert restic.short_backend_error(text) == (
        "client.PutObject: dial tcp 10.0.0.5:9000: connect: no route to host"
    )
    assert restic.short_backend_error("Access Denied.") == "Access Denied."


def test_message_with_every_retry_seen() -> None:
    retries = restic.Retries(1, "client.PutObject: dial tcp h:1: connect: connection refused")
    assert restic.stopped_message("backing up uploads", 30, retries, limit="the backup") == (
        "backing up uploads: the repository stopped answering: the backup did not finish "
        "within 30 s; restic was stopped after 1 retry "
        "(last error: client.PutObject: dial tcp h:1: connect: connection refused)"
    )


def test_message_with_only_the_end_of_the_output_says_at_least() -> None:
    retries = restic.Retries(5, "x", complete=False)
    message = restic.stopped_message("opening the repository", 120.0, retries)
    assert "restic did not finish within 120 s; restic was stopped after at least 5 retries" in (
        message
    )


def test_message_without_retries_does_not_blame_the_repository() -> None:
    message = restic.stopped_message("backing up db", 7.25, restic.Retries())
    assert message == "backing up db: restic did not finish within 7.2 s; restic was stopped"
    assert "\n" not in message


def test_timed_out_counts_in_the_tail_and_knows_when_it_is_only_the_end() -> None:
    short = timed_out("backing up x", 30, [STATUS, SAVE])
    assert short.retries.count == 1 and short.retries.complete
    assert "after 1 retry (last error: client.PutObject: dial tcp" in str(short)
    full = timed_out("backing up x", 30, [SAVE] * TAIL_LINES)
    assert full.retries == restic.Retries(
        TAIL_LINES,
        "client.PutObject: dial tcp 127.0.0.1:19555: connect: connection refused",
        complete=False,
    )
    assert f"after at least {TAIL_LINES} retries" in str(full)
    assert full.exit_code == 3
    every = timed_out("backing up x", 30, [SAVE] * TAIL_LINES, [STATUS, *[SAVE] * 23])
    assert every.retries.count == 23 and every.retries.complete
    assert "after 23 retries" in str(every)


def test_a_timed_out_program_keeps_all_it_wrote_on_standard_error() -> None:
    script = "for i in $(seq 23); do echo retry $i >&2; done; sleep 30"
    with pytest.raises(ProcessError) as failed:
        run(["sh", "-c", script], what="retrying", timeout=2)
    assert len(failed.value.output_tail) == TAIL_LINES
    assert failed.value.errors == tuple(f"retry {i}" for i in range(1, 24))


def test_timed_out_message_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CG_UNIT_S3_SECRET", "unit-S3-secret-93ab")
    SecretRef.env("CG_UNIT_S3_SECRET").reveal()  # registered for redaction, as the runner does
    try:
        error = timed_out("backing up x", 30, [SAVE.replace("connection", "unit-S3-secret-93ab")])
        assert "unit-S3-secret-93ab" not in str(error)
    finally:
        forget_secrets()


def fake_restic(tmp_path: Path, retries: int) -> Path:
    """A 'restic' that reports ``retries`` failed uploads and then hangs, as restic does."""
    script = tmp_path / "restic"
    lines = "".join(f"echo '{SAVE}' >&2\n" for _ in range(retries))
    script.write_text(f"#!/bin/sh\n{lines}exec sleep 60\n")
    script.chmod(0o755)
    return script


def test_the_runner_stops_a_hanging_restic_and_says_how_many_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CG_UNIT_RESTIC_PASSWORD", "unit-pw-5521")
    repo = Restic(
        restic.Repo("s3:http://127.0.0.1:1/b", str(fake_restic(tmp_path, 3))),
        SecretRef.env("CG_UNIT_RESTIC_PASSWORD"),
    )
    started = time.monotonic()
    with pytest.raises(restic.TimedOut) as stopped:
        repo.run(("backup",), "backing up x", timeout=1.5)
    assert time.monotonic() - started < 10
    assert str(stopped.value) == (
        "backing up x: the repository stopped answering: restic did not finish within 1.5 s; "
        "restic was stopped after 3 retries (last error: client.PutObject: dial tcp "
        "127.0.0.1:19555: connect: connection refused)"
    )


class SlowRepo:
    """Stands in for Restic: records the timeout it was given, then acts as told."""

    def __init__(self, error: restic.ResticError | None = None) -> None:
        self.error = error
        self.timeouts: list[float] = []

    def run(self, args: Any, what: str, *, timeout: float, input_text: Any = None) -> Any:
        self.timeouts.append(timeout)
        if self.error is not None:
            raise self.error
        return None


def test_the_clock_gives_each_call_what_is_left_at_most_its_own_limit() -> None:
    clock = BackupClock(100, started=time.monotonic() - 40)
    repo = SlowRepo()
    clock.restic(repo, ("unlock",), "removing stale locks", cap=300)  # type: ignore[arg-type]
    clock.restic(repo, ("unlock",), "removing stale locks", cap=30)  # type: ignore[arg-type]
    assert 59 < repo.timeouts[0] <= 60 and repo.timeouts[1] == 30


def test_a_call_stopped_at_the_backup_limit_names_the_limit() -> None:
    retries = restic.Retries(4, "client.PutObject: dial tcp h:1: connect: connection refused")
    repo = SlowRepo(restic.TimedOut("backing up x: restic did not finish within 9.8 s", retries))
    clock = BackupClock(30, started=time.monotonic() - 20)
    with pytest.raises(restic.TimedOut) as stopped:
        clock.restic(repo, ("backup",), "backing up x")  # type: ignore[arg-type]
    assert str(stopped.value) == (
        "backing up x: the repository stopped answering: the backup did not finish within 30 s; "
        "restic was stopped after 4 retries "
        "(last error: client.PutObject: dial tcp h:1: connect: connection refused)"
    )


def test_a_call_stopped_at_its_own_limit_keeps_its_message() -> None:
    own = restic.TimedOut("removing stale locks: restic did not finish within 300 s")
    clock = BackupClock(3600)
    with pytest.raises(restic.TimedOut) as stopped:
        clock.restic(SlowRepo(own), ("unlock",), "removing stale locks", cap=300)  # type: ignore[arg-type]
    assert stopped.value is own


def test_no_time_left_starts_nothing() -> None:
    repo = SlowRepo()
    clock = BackupClock(30, started=time.monotonic() - 31)
    with pytest.raises(restic.TimedOut) as stopped:
        clock.restic(repo, ("backup",), "recording the backup manifest")  # type: ignore[arg-type]
    assert str(stopped.value) == (
        "recording the backup manifest: the backup did not finish within 30 s; "
        "this step did not start"
    )
    assert repo.timeouts == []


def plan_file(tmp_path: Path, **keys: Any) -> Path:
    data = yaml.safe_load((SITE / "plans" / "citizen-portal.yml").read_text())
    data.update(keys)
    path = tmp_path / "citizen-portal.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load(path: Path) -> Any:
    return load_plans([(path, path.name)], INVENTORY, state_dir=Path("/s"), scratch_group="scratch")


def test_the_plan_default_is_six_hours_and_a_plan_may_set_its_own(tmp_path: Path) -> None:
    assert load(SITE / "plans" / "citizen-portal.yml")[0].spec.backup_timeout_s == 6 * 3600
    assert load(plan_file(tmp_path, backup_timeout="1h30m"))[0].spec.backup_timeout_s == 5400


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("soon", "'soon' is not a duration"),
        ("5s", "'5s' must be between 10s and 7d"),
        ("8d", "'8d' must be between 10s and 7d"),
    ],
)
def test_a_wrong_timeout_is_reported_with_the_other_problems(
    tmp_path: Path, value: str, says: str
) -> None:
    path = plan_file(tmp_path, backup_timeout=value, owner="x")
    with pytest.raises(ConfigError) as caught:
        load(path)
    lines = caught.value.lines()
    assert any(line.startswith("citizen-portal.yml:") and f"backup_timeout: {says}" in line
               for line in lines), lines  # fmt: skip
    assert any("owner:" in line for line in lines), lines


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_timeout_option_takes_whole_seconds_only(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        cli.main(["backup", "run", "citizen-portal", "--timeout", value])
    assert refused.value.code == 2
    assert "--timeout" in capsys.readouterr().err
