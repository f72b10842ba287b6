"""Sample data on lab hosts (lab.yml's data section, cityguard.lab.sample_data): the file's
checks, the shell and nftables text sent to the hosts, and the order of the steps."""

from __future__ import annotations

import io
import shlex
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cityguard.cli.main import main
from cityguard.config import ConfigError, content_root, load_site
from cityguard.core.context import Context
from cityguard.lab import LabError, sample_data
from cityguard.lab.description import LAB_FILE, DatabaseLoad, SampleData, ScriptRun, load_lab_file
from cityguard.lab.host import HostLink, HostPlan
from cityguard.lab.lab import Lab
from cityguard.lab.network import LabNetwork
from cityguard.lab.site import data_for_site, host_specs, isolated_hosts, lab_description

EXAMPLE_SITE = content_root() / "examples" / "site"


def problems(directory: Path, text: str) -> list[str]:
    (directory / LAB_FILE).write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_lab_file(
            directory / LAB_FILE,
            LAB_FILE,
            inventory_groups=["all", "db", "scratch"],
            inventory_hosts=["db1", "scratch1"],
        )
    return str(caught.value).splitlines()


def test_the_example_site_loads_its_database_trees() -> None:
    site = load_site(EXAMPLE_SITE / "site.yml")
    data = lab_description(site).data
    assert data.databases == (
        DatabaseLoad("db1", "citizen_portal", EXAMPLE_SITE / "data" / "citizen-portal.sql"),
    )
    assert data.scripts == (
        ScriptRun("db1", EXAMPLE_SITE / "data" / "citizen-portal-uploads.sh"),
        ScriptRun("web1", EXAMPLE_SITE / "data" / "document-registry.sh"),
    )
    assert data.hosts() == ("db1", "web1")
    # no restore-target firewall: the IPv6 plan's recovery segment isolates scratch1
    assert isolated_hosts(site, lab_description(site)) == []


def test_the_example_lab_is_laid_out_in_the_plan_segments() -> None:
    specs = {spec.name: spec.networks for spec in host_specs(load_site(EXAMPLE_SITE / "site.yml"))}
    assert specs == {
        "web1": ("public",),
        "db1": ("data",),
        "router1": ("public", "data", "staff"),
        "scratch1": ("recovery",),
    }


def test_every_data_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "seed.sql").write_text("SELECT 1;\n")
    (tmp_path / "adir").mkdir()
    found = problems(
        tmp_path,
        """\
        data:
          databases:
            - {host: db9, database: citizen_portal, sql: seed.sql}
            - {host: db1, database: Bad-Name, sql: missing.sql}
            - {host: db1, database: ok, sql: /etc/passwd}
          scripts:
            - {host: db1, script: adir}
            - {host: db1, scriptt: x.sh}
          isolated_groups: [scratch, recovery, scratch]
        """,
    )
    assert found == [
        "lab.yml:3: data.databases[0].host: the inventory has no host 'db9' (hosts: db1, scratch1)",
        "lab.yml:4: data.databases[1].sql: file not found: missing.sql",
        "lab.yml:4: data.databases[1].database: must be a database name "
        "(lowercase letters, digits, '_')",
        "lab.yml:5: data.databases[2].sql: must be a file path relative to the lab file",
        "lab.yml:7: data.scripts[0].script: is not a file: adir",
        "lab.yml:8: data.scripts[1].script: required key is missing",
        "lab.yml:8: data.scripts[1].scriptt: unknown key (allowed: host, script)",
        "lab.yml:9: data.isolated_groups[2]: 'scratch' is listed twice",
        "lab.yml:9: data.isolated_groups[1]: the inventory has no group 'recovery' "
        "(groups: db, scratch)",
    ]


def test_without_a_data_section_there_is_nothing_to_load(tmp_path: Path) -> None:
    (tmp_path / LAB_FILE).write_text("image:\n  installed: [nftables]\n")
    data = load_lab_file(tmp_path / LAB_FILE).data
    assert data.empty() and data == SampleData()


def test_a_database_is_made_afresh_and_only_psql_reads_the_sql() -> None:
    script = sample_data.load_database_script("citizen_portal")
    lines = script.splitlines()
    assert lines[-3:] == [
        "runuser -u postgres -- dropdb --if-exists citizen_portal </dev/null",
        "runuser -u postgres -- createdb citizen_portal </dev/null",
        "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d citizen_portal",
    ]
    readers = [line for line in lines if "</dev/null" not in line and line.strip() != "done"]
    assert [line for line in readers if "pg_isready" in line or "runuser" in line] == [lines[-1]]
    assert "PostgreSQL does not accept connections" in script


def test_a_script_runs_as_root_unchanged() -> None:
    text = "echo 'it''s'; printf '%s\\n' \"$HOME\"\n"
    command = sample_data.as_root(text)
    assert shlex.split(command) == ["sudo", "-n", "sh", "-ec", text]


def test_isolation_drops_every_connection_out_except_on_loopback() -> None:
    ruleset = sample_data.isolation_ruleset()
    assert ruleset.startswith("table inet cgisolate {")
    body = [line.strip() for line in ruleset.splitlines()]
    assert "type filter hook output priority 0; policy accept;" in body
    drops = [line for line in body if line.endswith(" drop")]
    assert drops == ["tcp flags & (syn | ack) == syn drop", "meta l4proto udp drop"]
    assert body.index('oifname "lo" accept') < body.index(drops[0])
    # stateless: an SSH session open before the table is loaded keeps working
    assert not [line for line in body if line.startswith("ct ")]
    assert sample_data.isolation_script(True).endswith("\nnft -f -")
    assert sample_data.isolation_script(False) == (
        "nft delete table inet cgisolate 2>/dev/null </dev/null || true"
    )


def fake_lab(tmp_path: Path, names: tuple[str, ...] = ("db1", "web1", "scratch1")) -> Lab:
    network = LabNetwork("lab", "cgabc123n0", "198.18.0.0/24")
    hosts = [
        HostPlan(n, f"cgx{n}", (), (HostLink("lab", network.bridge, "host0", f"cgx{n}v0",
                                             f"198.18.0.{i + 10}", 24),))
        for i, n in enumerate(names)
    ]  # fmt: skip
    return Lab("abc123", tmp_path / "lab", [network], hosts)


def test_loading_runs_databases_then_scripts_then_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        sample_data, "run", lambda argv, **kw: calls.append({"argv": argv, **kw}) or ""
    )
    sql = tmp_path / "seed.sql"
    sql.write_text("CREATE TABLE t (i int);\n")
    script = tmp_path / "tree.sh"
    script.write_text("mkdir -p /srv/x\n")
    data = SampleData((DatabaseLoad("db1", "app", sql),), (ScriptRun("web1", script),), ("s",))
    said: list[str] = []
    lab = fake_lab(tmp_path)
    sample_data.load(lab, data, ["scratch1"], said.append)

    assert [c["argv"][-2] for c in calls] == ["db1", "web1", "scratch1"]
    for call in calls:
        assert call["argv"][:7] == [
            "ssh", "-F", str(lab.ssh_config), "-o", "ControlPath=none", "-o", "BatchMode=yes"
        ]  # fmt: skip
        assert call["timeout"] is not None
    assert calls[0]["input_text"] == "CREATE TABLE t (i int);\n"
    assert calls[0]["what"] == "loading seed.sql into app on db1"
    assert shlex.split(calls[1]["argv"][-1])[-1] == "mkdir -p /srv/x\n"
    assert calls[1].get("input_text") is None
    assert calls[2]["input_text"] == sample_data.isolation_ruleset()
    assert said == [
        "db1: database app loaded from seed.sql",
        "web1: tree.sh done",
        "scratch1: isolated (nftables table inet cgisolate: "
        "opens no connection except on loopback)",
    ]


def test_hosts_the_lab_does_not_have_are_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_data, "run", lambda *a, **k: pytest.fail("nothing may run"))
    data = SampleData((DatabaseLoad("db1", "app", tmp_path / "x.sql"),))
    with pytest.raises(LabError) as caught:
        sample_data.load(fake_lab(tmp_path, ("web1",)), data, ["scratch1"], print)
    assert str(caught.value) == (
        "lab abc123 has no host db1, scratch1 (hosts: web1): start it with 'cityguard lab up'"
    )


def test_lifting_the_isolation_sends_no_ruleset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        sample_data, "run", lambda argv, **kw: calls.append({"argv": argv, **kw}) or ""
    )
    sample_data.isolate(fake_lab(tmp_path), ["scratch1"], on=False)
    assert calls[0]["input_text"] is None
    assert calls[0]["what"] == "lifting the isolation of scratch1"
    assert "nft delete table inet cgisolate" in calls[0]["argv"][-1]


def test_loading_data_needs_a_running_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(EXAMPLE_SITE, tmp_path / "site")
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    with pytest.raises(LabError, match=r"^no lab is up for this site: run 'cityguard lab up'"):
        data_for_site(load_site(tmp_path / "site" / "site.yml"))


def test_the_command_says_when_no_lab_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(Console(file=out, width=200), Console(file=err, width=200))
    code = main(["lab", "data", "--site", str(EXAMPLE_SITE / "site.yml")], ctx)
    assert code == 3
    assert err.getvalue() == "error: no lab is up for this site: run 'cityguard lab up' first\n"
    assert out.getvalue() == ""
