"""YAML loading with line numbers: the basis of every located configuration problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityguard.config.errors import ConfigError, ConfigProblem, format_key_path
from cityguard.config.yaml_lines import load_yaml_file, parse_yaml


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "site.yml")
    return [str(problem) for problem in caught.value.problems]


def test_records_lines_of_keys_and_list_items() -> None:
    doc = parse_yaml(
        "# comment\nsite:\n  name: a\ndrill:\n  plans:\n    - one.yml\n    - two.yml\n",
        "site.yml",
    )
    assert doc.data == {"site": {"name": "a"}, "drill": {"plans": ["one.yml", "two.yml"]}}
    assert doc.lines[("site",)] == 2
    assert doc.lines[("site", "name")] == 3
    assert doc.lines[("drill", "plans")] == 5
    assert doc.lines[("drill", "plans", 1)] == 7
    assert doc.line(("drill", "plans", 1, "deeper")) == 7  # nearest recorded ancestor


def test_malformed_yaml_gives_line_and_parser_problem() -> None:
    assert problems("site:\n  name: a\n  title: b\n  contact: x: y\n") == [
        "site.yml:4: (document): mapping values are not allowed here"
    ]


def test_duplicate_keys_are_all_reported() -> None:
    text = "baseline: a\nsite:\n  name: a\n  name: b\nbaseline: c\n"
    assert problems(text) == [
        "site.yml:4: site.name: duplicate key 'name'",
        "site.yml:5: baseline: duplicate key 'baseline'",
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file(text: str) -> None:
    assert problems(text) == ["site.yml: (document): file is empty"]


def test_merge_keys_are_not_duplicates_and_own_keys_win() -> None:
    doc = parse_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "f.yml")
    assert doc.data["other"] == {"x": 1, "y": 3}
    assert doc.lines[("other", "y")] == 4


def test_unknown_tag_is_a_problem_not_a_crash() -> None:
    assert problems("secret: !vault abc\n") == [
        "site.yml:1: (document): could not determine a constructor for the tag '!vault'"
    ]


def test_several_documents_are_rejected() -> None:
    assert problems("a: 1\n---\nb: 2\n") == [
        "site.yml:2: (document): "
        "expected a single document in the stream, but found another document"
    ]


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(tmp_path / "nope.yml", "nope.yml")
    assert str(caught.value) == "nope.yml: (document): file not found"


def test_key_path_formatting() -> None:
    assert format_key_path(("drill", "plans", 1)) == "drill.plans[1]"
    assert format_key_path(("eidas", "keycloak", "url")) == "eidas.keycloak.url"
    assert format_key_path(()) == "(document)"


def test_problem_and_error_text() -> None:
    located = ConfigProblem("site.yml", 3, "site.name", "bad")
    unlocated = ConfigProblem("site.yml", None, "inventory", "missing")
    from_cli = ConfigProblem("", None, "limit", "no host or group named 'x'")
    assert str(located) == "site.yml:3: site.name: bad"
    assert str(unlocated) == "site.yml: inventory: missing"
    assert str(from_cli) == "limit: no host or group named 'x'"
    error = ConfigError([located, unlocated])
    assert str(error) == "site.yml:3: site.name: bad\nsite.yml: inventory: missing"
    assert error.problems == [located, unlocated]
