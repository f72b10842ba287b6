"""Ansible's diffs as text: what a check mode run shows and what the evidence keeps of a change.

Pure functions, shared by every area that drives playbooks (harden, ipv6 rollout) in their views
(shown to the operator) and actions (stored as Change records), so a change reads the same on
screen and in the evidence.
"""

from __future__ import annotations

import difflib
from typing import Any


def unified_diff(diff: Any) -> str:
    """Ansible's before/after as a unified diff, which is what ops read in reviews."""
    if not isinstance(diff, dict):
        return str(diff)
    if "prepared" in diff:  # some modules hand over a finished diff
        return str(diff["prepared"])
    before, after = diff.get("before", ""), diff.get("after", "")
    if not isinstance(before, str) or not isinstance(after, str):
        return f"before: {before}\nafter: {after}"
    lines = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        str(diff.get("before_header", "before")),
        str(diff.get("after_header", "after")),
        lineterm="",
    )
    return "\n".join(lines)


def diff_text(diffs: list[Any] | None) -> str | None:
    """Every diff of one task as one text; None when Ansible reported none (diff mode off)."""
    texts = [text for text in (unified_diff(diff) for diff in diffs or []) if text]
    return "\n".join(texts) or None
