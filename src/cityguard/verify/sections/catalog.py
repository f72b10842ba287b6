"""What the system-area checks share besides facts: the controls catalog's default parameters,
read at collection time to parametrize one check per listed item, and `holds`, which records a
requirement that is not plain equality.

It registers no section; the facts themselves live in the area modules next to it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cityguard.config import content_root
from cityguard.verify.expectations import Expect
from cityguard.verify.sections._common import read_control_parameters


@cache
def default_parameters(control_file: str) -> dict[str, dict[str, Any]]:
    """Control id -> default parameters in policies/controls/<control_file>.

    Checks that prove one thing per listed item (a file, an audit rule, a package) are
    parametrized from these at collection time; the values in force come from `param()`.
    """
    return read_control_parameters(content_root() / "policies" / "controls" / control_file)


def holds(expect: Expect, ok: bool, observed: Any, requirement: str, label: str) -> None:
    """Record what was observed against a requirement that is not plain equality (a mode no
    wider than, a number at least): passes when `ok`, else fails showing the requirement."""
    expect.equal(
        observed,
        observed if ok else requirement,
        f"{label} ({requirement})" if label else requirement,
    )


def parameter_items(control_file: str, parameter: str) -> list[tuple[str, str]]:
    """(control id, key) for every key of a mapping parameter, e.g. every file of `files`."""
    return [
        (control_id, str(key))
        for control_id, parameters in default_parameters(control_file).items()
        for key in parameters.get(parameter) or {}
    ]
