"""Hostile YAML: impossible values, deep nesting, alias bombs, huge files; located, bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cityguard.config.errors import ConfigError
from cityguard.config.yaml_lines import MAX_BYTES, MAX_DEPTH, load_yaml_file, parse_yaml


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "site.yml")
    return caught.value.lines()


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "waivers:\n  - expires: 2027-02-30\n",
            "site.yml:2: waivers[0].expires: not a valid date '2027-02-30': "
            "day is out of range for month",
        ),
        (
            "a:\n  b: 2027-13-01 10:00:00\n",
            "site.yml:2: a.b: not a valid date '2027-13-01 10:00:00': month must be in 1..12",
        ),
        ("2027-02-30: x\n", "site.yml:1: (document): not a valid date '2027-02-30'"),
    ],
)
def test_an_impossible_date_is_a_located_line(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_every_impossible_value_at_once() -> None:
    text = "a: 2027-02-30\nb: ok\nc: 2026-04-31\nd: " + "9" * 5000 + "\n"
    found = problems(text)
    assert [line.split(":")[1] for line in found] == ["1", "3", "4"]
    assert "Exceeds the limit" in found[2]


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    flow = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    assert problems(flow) == [f"site.yml:1: (document): nested deeper than {MAX_DEPTH} levels"]
    block = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    assert problems(block) == [
        f"site.yml:{MAX_DEPTH}: (document): nested deeper than {MAX_DEPTH} levels"
    ]


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_DEPTH - 3  # the root mapping and the scalar are levels too
    doc = parse_yaml("a: " + "[" * depth + "1" + "]" * depth + "\n", "site.yml")
    assert doc.data["a"] is not None


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 10):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    started = time.monotonic()
    found = problems("\n".join(lines) + "\n")
    elapsed = time.monotonic() - started
    assert len(found) == 1
    assert "expands into more than" in found[0]
    assert found[0].startswith("site.yml:")
    assert elapsed < 20  # 10**10 values unbounded; the bound stops it after 200 000


def test_a_huge_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    with path.open("w") as handle:
        handle.write("all:\n  vars:\n    pad: '")
        handle.write("x" * (MAX_BYTES + 10))
        handle.write("'\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path, "inventory.yml")
    assert caught.value.lines() == [
        "inventory.yml: (document): file is larger than 4 MiB; not read"
    ]


def test_a_fifo_or_device_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(Path("/dev/null"), "null.yml")
    assert caught.value.lines() == ["null.yml: (document): file is empty"]
