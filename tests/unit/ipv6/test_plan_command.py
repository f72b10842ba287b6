"""`cityguard ipv6 plan` through the real command line: exports and evidence, or exit 2 with
every problem located and nothing recorded."""

from __future__ import annotations

import shutil
from pathlib import Path

from cityguard.config import content_root
from cityguard.evidence import SqliteStore
from cli_process import cityguard

EXAMPLE = content_root() / "examples" / "site"


def test_plan_exports_and_records_segments_and_prefixes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = cityguard(
        "ipv6",
        "plan",
        "--site",
        str(EXAMPLE / "site.yml"),
        "--out",
        str(out),
        state=tmp_path / "state",
    )
    assert done.returncode == 0, done.stderr
    # the table says the recovery segment is isolated where a gateway would be
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["recovery", "140", "fd6b:3c41:9e20:104::/64", "isolated", "no"] in rows
    assert sorted(p.name for p in out.iterdir()) == [
        "0.2.e.9.1.4.c.3.b.6.d.f.ip6.arpa.zone",
        "netbox-ip-addresses.csv",
        "netbox-prefixes.csv",
        "plan.json",
        "ventspils.example.internal.zone",
    ]
    with SqliteStore(tmp_path / "state" / "evidence.sqlite") as store:
        run = store.latest_run("ipv6 plan")
        assert run is not None and run.exit_code == 0
        steps = store.steps(run.id)
        measurements = store.measurements(run.id)
        artifacts = store.artifacts(run.id)
    assert [(str(s.subject), s.outcome.value) for s in steps] == [
        ("segment:city-hall/public", "pass"),
        ("segment:city-hall/data", "pass"),
        ("segment:city-hall/staff", "pass"),
        ("segment:city-hall/recovery", "pass"),
    ]
    assert steps[3].detail == (
        "prefix fd6b:3c41:9e20:104::/64; isolated: no gateway, no router; static only; "
        "scratch1 fd6b:3c41:9e20:104::da1a:a9af"
    )
    assert {str(m.subject): m.value for m in measurements} == {
        "prefix:fd6b:3c41:9e20:101::/64": 2.0,
        "prefix:fd6b:3c41:9e20:102::/64": 2.0,
        "prefix:fd6b:3c41:9e20:103::/64": 1.0,
        "prefix:fd6b:3c41:9e20:104::/64": 1.0,
    }
    assert any(a.path.endswith("exports/plan.json") for a in artifacts)


def test_a_broken_plan_exits_2_with_every_problem_and_records_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    plan = site / "ipv6-plan.yml"
    text = plan.read_text().replace("fd6b:3c41:9e20::/48", "fd6b:3c41:9e20::/50")
    text = text.replace("web1: {segment: public}", "web1: {segment: dmz}")
    plan.write_text(text.replace('interface_id: "::d:1"', 'address: "10.0.0.5"'))
    done = cityguard("ipv6", "plan", "--site", str(site / "site.yml"), state=tmp_path / "state")
    assert done.returncode == 2, done.stdout
    lines = done.stderr.splitlines()
    where = str(site / "ipv6-plan.yml")
    assert lines == [
        f"{where}:35: hosts.web1.segment: segment 'dmz' is not defined in the plan's locations",
        f"{where}:36: hosts.db1.address: '10.0.0.5' is IPv4; an IPv6 address is expected",
        f"{where}:5: site_prefix: warning: /50 is not on a nibble boundary (a multiple of 4): "
        "addresses and reverse DNS zones do not split on hex digits",
    ]
    assert not (tmp_path / "state" / "evidence.sqlite").exists()
