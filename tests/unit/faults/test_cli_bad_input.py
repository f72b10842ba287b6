"""Bad input through the real command line: one located line per problem, exit 2, no traceback,
nothing written. No host is involved: every case is refused before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.sites import INVENTORY, SITE, cityguard, make_site

BASELINES = Path(__file__).resolve().parents[3] / "policies" / "baselines"
WAIVER = (
    "waivers:\n  - control: CG-SSH-003\n    hosts: [web]\n"
    "    justification: the old app needs it\n    approver: CISO\n    expires: {date}\n"
)


def refused(tmp_path: Path, *args: str, state: Path | None = None) -> list[str]:
    state = state if state is not None else tmp_path / "state"
    result = cityguard(*args, state=state, cwd=tmp_path)  # files named as the operator did
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    if state.name == "state":
        assert not (state / "evidence.sqlite").exists(), "bad input must change nothing"
    return result.stderr.strip().splitlines()


def test_an_impossible_waiver_date(tmp_path: Path) -> None:
    make_site(tmp_path, SITE.replace("waivers: []\n", WAIVER.format(date="2027-02-30")))
    assert refused(tmp_path, "check", "--site", "site.yml") == [
        "site.yml:13: waivers[0].expires: not a valid date '2027-02-30': "
        "day is out of range for month"
    ]


def test_an_impossible_date_in_the_inventory(tmp_path: Path) -> None:
    inventory = INVENTORY.replace("web1: {}", "web1: {built: 2026-02-29}")
    make_site(tmp_path, inventory=inventory)
    lines = refused(tmp_path, "harden", "--check", "--site", "site.yml")
    assert lines == [
        "inventory.yml:5: all.children.web.hosts.web1.built: not a valid date '2026-02-29': "
        "day is out of range for month"
    ]


def test_an_alias_bomb(tmp_path: Path) -> None:
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)
    ]
    make_site(tmp_path, SITE + "\n".join(bomb) + "\n")
    lines = refused(tmp_path, "check", "--site", "site.yml")
    assert len(lines) == 1
    assert "expands into more than 200000 values" in lines[0]


def test_a_state_directory_that_is_a_file(tmp_path: Path) -> None:
    make_site(tmp_path)
    state = tmp_path / "not-a-dir"
    state.write_text("x")
    assert refused(tmp_path, "evidence", "list", "--site", "site.yml", state=state) == [
        f"CITYGUARD_STATE: {state} is not a directory"
    ]
    assert refused(tmp_path, "check", "--site", "site.yml", state=state / "below") == [
        f"CITYGUARD_STATE: {state / 'below'} is inside {state}, which is not a directory"
    ]


def test_evidence_list_limit_zero(tmp_path: Path) -> None:
    make_site(tmp_path)
    lines = refused(tmp_path, "evidence", "list", "--limit", "0", "--site", "site.yml")
    assert lines[-1].endswith("argument --limit: must be 1 or more, got 0")


def test_every_problem_in_one_run(tmp_path: Path) -> None:
    text = SITE.replace("title: Fault tests", "title: ''").replace(
        "inventory: inventory.yml", "inventory: missing.yml"
    )
    text = text.replace("baseline: municipal-server", "baseline: municipal")
    make_site(tmp_path, text)
    lines = refused(tmp_path, "check", "--site", "site.yml")
    assert [line.split(": ", 1)[1] for line in lines] == [
        "site.title: String should have at least 1 character",
        "inventory: file not found: missing.yml",
        "baseline: unknown baseline 'municipal' (known: "
        + ", ".join(
            sorted(p.stem for p in (Path(__file__).parents[3] / "policies/baselines").glob("*.yml"))
        )
        + ")",
    ]


def test_a_schema_problem_does_not_hide_inventory_problems(tmp_path: Path) -> None:
    inventory = INVENTORY.replace("web1: {}", "web1: {ansible_host: 10.0.0.300}")
    make_site(tmp_path, SITE.replace("title: Fault tests", "title: 5"), inventory)
    lines = refused(tmp_path, "check", "--site", "site.yml")
    assert len(lines) == 2
    assert lines[0] == "site.yml:4: site.title: Input should be a valid string"
    assert lines[1] == (
        "inventory.yml:5: all.children.web.hosts.web1.ansible_host: "
        "'10.0.0.300' is not a valid IP address"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("web 1", "'web 1' is neither an IP address nor a valid host name"),
        ("-web", "'-web' is neither an IP address nor a valid host name"),
        ("fd00::1::2", "'fd00::1::2' is neither an IP address nor a valid host name"),
        ("[]", "must be an IP address or a host name"),
    ],
)
def test_a_bad_ansible_host(tmp_path: Path, value: str, message: str) -> None:
    inventory = INVENTORY.replace("db1: {}", f"db1: {{ansible_host: '{value}'}}").replace(
        "'[]'", "[]"
    )
    make_site(tmp_path, inventory=inventory)
    lines = refused(tmp_path, "check", "--site", "site.yml")
    assert lines == [f"inventory.yml:8: all.children.db.hosts.db1.ansible_host: {message}"]


def test_host_vars_are_checked_and_stray_files_refused(tmp_path: Path) -> None:
    make_site(tmp_path)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "web1.yml").write_text("ansible_host: 300.1.1.1\n")
    (tmp_path / "host_vars" / "web2.yml").write_text("ansible_host: 10.0.0.2\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "db").mkdir()
    lines = refused(tmp_path, "check", "--site", "site.yml")
    assert lines == [
        "group_vars/db: (document): a directory of vars files is not supported: "
        "write group_vars/db.yml",
        "host_vars/web1.yml:1: ansible_host: '300.1.1.1' is not a valid IP address",
        "host_vars/web2.yml: (document): no host named 'web2' in the inventory",
    ]


def test_an_empty_inventory(tmp_path: Path) -> None:
    make_site(tmp_path, inventory="all: {}\n")
    lines = refused(tmp_path, "check", "--site", "site.yml")
    assert lines == ["inventory.yml: limit: the inventory has no host; nothing to do"]


@pytest.mark.parametrize("command", [["check"], ["harden", "--check"]])
def test_controls_of_only_commas(tmp_path: Path, command: list[str]) -> None:
    make_site(tmp_path)
    assert refused(tmp_path, *command, "--controls", ",,,", "--site", "site.yml") == [
        "--controls: selects no control"
    ]


def test_an_unknown_tag(tmp_path: Path) -> None:
    make_site(tmp_path)
    lines = refused(tmp_path, "harden", "--tags", "ssh,sshh", "--site", "site.yml")
    assert len(lines) == 1
    assert lines[0].startswith("--tags: unknown tag 'sshh' (role tags: ssh, accounts, sudo,")
    assert refused(tmp_path, "harden", "--tags", ",,", "--site", "site.yml") == [
        "--tags: selects no tag"
    ]
