"""restic as data: argv builders, JSON parsers, exit code mapping (no restic is run)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cityguard.drill import restic

BACKUP_OUT = (
    '{"message_type":"status","percent_done":0.5}\n'
    '{"message_type":"summary","files_new":1,"data_added":1059,"total_files_processed":1,'
    '"total_bytes_processed":3,"total_duration":0.56,"snapshot_id":"d5652dc7e665"}\n'
)
SNAPSHOTS_OUT = (
    '[{"time":"2026-12-02T11:09:00.6668671Z","paths":["/x"],"hostname":"db1",'
    '"tags":["cg-system=portal","cg-part=manifest"],"id":"aa","short_id":"aa",'
    '"summary":{"total_bytes_processed":42}},'
    '{"time":"2026-12-01T10:00:00+02:00","paths":["/y"],"hostname":"db1","tags":null,"id":"bb"}]'
)


def test_backup_from_command_puts_the_command_after_a_double_dash() -> None:
    args = restic.backup_from_command_args(
        "/s/db.pgdump", ("ssh", "db1", "pg_dump -Fc x"), tags=("cg-system=s",), host="db1"
    )
    assert args[:3] == ("backup", "--retry-lock", restic.RETRY_LOCK)
    assert args[-5:] == ("--stdin-from-command", "--", "ssh", "db1", "pg_dump -Fc x")
    assert args[5:7] == ("--tag", "cg-system=s")


def test_tags_with_commas_are_refused() -> None:
    with pytest.raises(ValueError):
        restic.tag_args(["a,b"])


def test_repo_base_never_holds_a_password() -> None:
    base = restic.Repo("/r", "/bin/restic", "/c").base()
    assert base == ("/bin/restic", "--repo", "/r", "--json", "--cache-dir", "/c")


def test_forget_keeps_per_part_and_prunes() -> None:
    args = restic.forget_args("portal", {"keep_last": 3, "keep_daily": 7}, prune=True)
    assert "--keep-last" in args and "--keep-daily" in args and args[-1] == "--prune"
    assert args[args.index("--group-by") + 1] == "host,paths"


def test_parse_backup_summary() -> None:
    summary = restic.parse_backup(BACKUP_OUT)
    assert summary.snapshot_id == "d5652dc7e665"
    assert summary.bytes_processed == 3 and summary.data_added == 1059


def test_parse_backup_without_summary_is_an_error() -> None:
    with pytest.raises(restic.ResticError):
        restic.parse_backup('{"message_type":"status"}\n')


def test_parse_snapshots_sorts_and_reads_nanoseconds_and_offsets() -> None:
    found = restic.parse_snapshots(SNAPSHOTS_OUT)
    assert [s.id for s in found] == ["bb", "aa"]
    assert found[0].time == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert found[1].time.microsecond == 666867
    assert found[1].tag_value(restic.TAG_PART) == "manifest" and found[1].size == 42


def test_parse_check_finds_errors() -> None:
    ok = restic.parse_check('{"message_type":"summary","num_errors":0,"broken_packs":null}')
    assert ok.ok
    bad = restic.parse_check(
        '{"message_type":"summary","num_errors":2,"broken_packs":["abc"]}',
        '{"message_type":"error","message":"pack abc: not found"}',
    )
    assert not bad.ok and bad.broken_packs == ("abc",) and bad.messages == ("pack abc: not found",)


@pytest.mark.parametrize(
    ("code", "kind", "text"),
    [
        (10, restic.RepositoryMissing, "repository does not exist"),
        (11, restic.RepositoryLocked, "locked"),
        (12, restic.WrongPassword, "wrong repository password"),
        (3, restic.SourceUnreadable, "could not be read"),
    ],
)
def test_known_exit_codes_are_typed(code: int, kind: type, text: str) -> None:
    error = restic.error_for(code, "", "backing up")
    assert type(error) is kind and text in str(error) and error.returncode == code
    assert error.exit_code == 3


def test_unknown_exit_codes_are_failures_with_restics_message() -> None:
    stderr = (
        '{"message_type":"exit_error","code":130,'
        '"message":"Fatal: unable to save snapshot: context canceled"}'
    )
    error = restic.error_for(130, stderr, "backing up db")
    assert type(error) is restic.ResticError
    assert (
        str(error)
        == "backing up db: restic failed (exit code 130): unable to save snapshot: context canceled"
    )


def test_a_failing_commands_own_message_is_kept() -> None:
    stderr = (
        'pg_dump: error: database "x" does not exist\n'
        '{"message_type":"exit_error","code":130,"message":"Fatal: context canceled"}\n'
    )
    error = restic.error_for(130, stderr, "backing up db")
    assert str(error).endswith('context canceled (pg_dump: error: database "x" does not exist)')
