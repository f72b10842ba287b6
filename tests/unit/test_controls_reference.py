"""docs/controls.md is generated from the catalog and must be current.

When the first test fails, regenerate the file with
    cityguard docs controls --output docs/controls.md
and commit it with the change to policies/.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import yaml

from cityguard import cli
from cityguard.catalog import load_catalog
from cityguard.catalog.params import ParamSchema, describe
from cityguard.catalog.reference import REGENERATE, generate
from cityguard.config import content_root

POLICIES = content_root() / "policies"
REFERENCE = content_root() / "docs" / "controls.md"


def test_docs_controls_md_is_current() -> None:
    assert REFERENCE.read_text() == generate(POLICIES), f"docs/controls.md is stale: {REGENERATE}"


def test_every_control_is_documented_with_its_facts() -> None:
    text = generate(POLICIES)
    catalog = load_catalog(POLICIES)
    for control in catalog.controls.values():
        section = text.split(f"\n## {control.id}\n", 1)[1].split("\n## ", 1)[0]
        assert control.title in section
        facts = f"scope {control.scope} · verifier {control.verifier} · level {control.level}"
        assert f"{facts} · severity {control.severity}" in section
        for name, schema in control.parameter_schema.items():
            assert f"| `{name}` | {describe(schema).replace('|', chr(92) + '|')} |" in section
        for framework in catalog.frameworks:
            assert f"| `{framework}` |" in section
    ssh_003 = text.split("\n## CG-SSH-003\n", 1)[1].split("\n## ", 1)[0]
    assert "| `max_auth_tries` | whole number 1..10 | `4` |" in ssh_003
    assert "| `cis_debian12` | 5.1.16 |" in ssh_003


def test_a_changed_default_changes_the_reference(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    ssh = policies / "controls" / "ssh.yml"
    data = yaml.safe_load(ssh.read_text())
    (control,) = [c for c in data["controls"] if c["id"] == "CG-SSH-003"]
    control["parameters"]["max_auth_tries"] = 3
    ssh.write_text(yaml.safe_dump(data, allow_unicode=True))
    changed = generate(policies)
    assert changed != generate(POLICIES)
    assert "| `max_auth_tries` | whole number 1..10 | `3` |" in changed


def test_describe_names_every_limit() -> None:
    def schema(**spec: object) -> ParamSchema:
        return ParamSchema.model_validate(spec)

    assert describe(schema(type="int", min=0)) == "whole number at least 0"
    assert describe(schema(type="int", max=9)) == "whole number at most 9"
    assert describe(schema(type="int", enum=[0, 1])) == "whole number, one of 0, 1"
    words = schema(type="str", min_length=1, max_length=8, pattern="[a-z]+")
    assert describe(words) == "text of 1..8 characters matching `[a-z]+`"
    items = schema(type="list", items={"type": "bool"}, min_items=1, max_items=3)
    assert describe(items) == "list of (true or false), 1..3 items"
    assert describe(schema(type="list", items={"type": "bool"}, min_items=2)).endswith(
        ", 2 or more items"
    )
    keyed = schema(type="map", keys={"type": "str", "pattern": "[a-z]+"}, values={"type": "bool"})
    assert describe(keyed) == "mapping of (text matching `[a-z]+`) to (true or false)"
    record = schema(type="record", fields={"a": {"type": "bool", "optional": True}})
    assert describe(record) == "{a?: true or false}"


def test_the_command_prints_or_writes_the_reference(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["docs", "controls"]) == 0
    assert out.getvalue() == generate(POLICIES)
    target = tmp_path / "controls.md"
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["docs", "controls", "--output", str(target)]) == 0
    assert target.read_text() == out.getvalue()
