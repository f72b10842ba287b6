"""The site file's JSON Schema: generated from the models, described key by key, and kept in
step with the commented example (examples/site/site.yml), which must pass both the schema and
``load_site``, down to the examples written in its comments.

A commented example is a run of comment lines indented by at least three spaces after the "#"
(``#   key: value``) holding whole top-level keys; each is merged into the example and checked.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import Field

from cityguard.cli.main import build_parser, main
from cityguard.config import SectionSpec, SiteSection, content_root, load_site, site_schema
from cityguard.config.errors import ConfigError
from cityguard.config.sections import BASE_KEYS, registered_sections
from cityguard.config.yaml_lines import parse_yaml
from cityguard.core.context import Context

EXAMPLE = content_root() / "examples" / "site"


class Drillish(SiteSection):
    """A test area's settings."""

    plans: list[str] = Field(default_factory=list, description="Plan files.")


def area_sections() -> tuple[SectionSpec, ...]:
    """The sections the areas register, as the command line registers them (drill, eidas...)."""
    build_parser()
    return registered_sections()


def example_data() -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLE / "site.yml").read_text())
    assert isinstance(data, dict)
    return as_json(data)


def as_json(data: Any) -> Any:
    """YAML dates become strings, as the schema (format: date) describes them."""
    return json.loads(json.dumps(data, default=str))


def commented_examples(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(first line, data) of every commented-out YAML example in the file."""
    block: list[str] = []
    start = 0
    for number, line in enumerate([*text.splitlines(), ""], 1):
        if line.startswith("#   "):
            if not block:
                start = number
            block.append(line[4:])
            continue
        if block:
            data = parse_yaml("\n".join(block) + "\n", f"site.yml:{start}").data
            assert isinstance(data, dict), f"line {start}: a commented example is a mapping"
            yield start, as_json(data)
            block = []


def described_keys(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key path, schema) of every property of every object in the schema, $defs included."""
    definitions = schema.get("$defs", {})

    def walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                yield f"{path}.{key}".lstrip("."), value
            for key, value in node.items():
                if key != "$defs":
                    yield from walk(value, path)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, path)

    yield from walk({k: v for k, v in schema.items() if k != "$defs"}, "")
    for name, definition in definitions.items():
        yield from walk(definition, name)


def schema_keys(schema: dict[str, Any], node: dict[str, Any], data: Any, path: str) -> list[str]:
    """Keys used in ``data`` that the schema does not name at that place."""
    while "$ref" in node or "anyOf" in node:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        else:
            node = next(n for n in node["anyOf"] if n.get("type") != "null")
    missing = []
    if isinstance(data, dict) and "properties" in node:
        for key, value in data.items():
            if key not in node["properties"]:
                missing.append(f"{path}{key}")
            else:
                missing += schema_keys(schema, node["properties"][key], value, f"{path}{key}.")
    elif isinstance(data, list) and "items" in node:
        for index, item in enumerate(data):
            missing += schema_keys(schema, node["items"], item, f"{path}[{index}].")
    return missing


def test_schema_is_a_valid_json_schema() -> None:
    schema = site_schema([])
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "cityguard site file"
    assert schema["required"] == ["version", "site", "inventory", "baseline"]
    assert schema["properties"]["version"]["const"] == 1
    assert schema["additionalProperties"] is False


def test_every_key_has_a_description() -> None:
    schema = site_schema([SectionSpec("drillish", Drillish, "A test area.")])
    keys = dict(described_keys(schema))
    assert {"version", "site", "evidence", "drillish", "SiteInfo.name", "Drillish.plans"} <= set(
        keys
    )
    undescribed = sorted(path for path, node in keys.items() if not node.get("description"))
    assert undescribed == []
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), f"{name} has no description"


def test_areas_to_come_have_no_keys_yet() -> None:
    properties = site_schema([])["properties"]
    assert not {"drill", "ipv6", "eidas", "keycloak"} & set(properties)


def test_a_registered_section_is_in_the_schema() -> None:
    schema = site_schema([*area_sections(), SectionSpec("drillish", Drillish, "A test area.")])
    assert schema["properties"]["drillish"]["description"] == "A test area."
    assert "drillish" not in schema["required"]
    validator = jsonschema.Draft202012Validator(schema)
    data = {**example_data(), "drillish": {"plans": ["a.yml"]}}
    assert list(validator.iter_errors(data)) == []
    data["drillish"] = {"plans": ["a.yml"], "plan": "b.yml"}
    assert [e.message for e in validator.iter_errors(data)] != []


def test_example_validates_against_the_schema() -> None:
    schema = site_schema(area_sections())
    data = example_data()
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    assert schema_keys(schema, schema, data, "") == []


def test_example_loads() -> None:
    site = load_site(EXAMPLE / "site.yml", content_root(), sections=area_sections())
    assert site.version == 1
    assert {"drill", "eidas"} <= set(site.sections)


def test_the_example_needs_the_areas_sections() -> None:
    with pytest.raises(ConfigError, match="eidas: unknown key"):
        load_site(EXAMPLE / "site.yml", content_root(), sections=[])


def test_the_checks_catch_a_key_the_schema_lacks() -> None:
    schema = site_schema([])
    base = {key: value for key, value in example_data().items() if key in BASE_KEYS}
    data = {**base, "drill": {"plans": []}}
    data["evidence"] = {"dsn_env": "X", "dsn_url": "postgresql://db/x"}
    assert schema_keys(schema, schema, data, "") == ["evidence.dsn_url", "drill"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


def test_commented_examples_validate_and_load(tmp_path: Path) -> None:
    sections = area_sections()
    schema = site_schema(sections)
    text = (EXAMPLE / "site.yml").read_text()
    examples = list(commented_examples(text))
    assert {key for _, data in examples for key in data} >= {
        "parameters",
        "evidence",
        "waivers",
        "eidas",
    }
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    for line, snippet in examples:
        data = {**example_data(), **snippet}
        assert schema_keys(schema, schema, data, "") == [], f"example at line {line}"
        jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
        (site / "site.yml").write_text(yaml.safe_dump(data, sort_keys=False))
        load_site(site / "site.yml", content_root(), sections=sections)


def test_schema_command_prints_the_schema() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["schema", "site"], Context())
    assert code == 0
    assert json.loads(out.getvalue()) == json.loads(json.dumps(site_schema()))
