"""Login banners: what /etc/issue, /etc/issue.net and /etc/motd show, who may change them, and
the dynamic message-of-the-day scripts that would print system details."""

import re

import pytest

from cityguard.verify.facts import watch_paths
from cityguard.verify.sections.access import BANNER_FILES, MOTD_SCRIPTS_DIR
from cityguard.verify.sections.access_rules import Rule, absent_or, mode_and_owner, stat_text

watch_paths(*BANNER_FILES)
# agetty escapes for OS release (\r \s \S \v) and machine (\m), and the systems' own names
OS_DETAILS = re.compile(r"\\[mrsvS]|\b(debian|ubuntu|gnu|linux)\b", re.IGNORECASE)
# update-motd.d scripts that print the release or kernel: Debian's, then Ubuntu's
OS_DETAIL_SCRIPTS = ("10-uname", "00-header", "10-help-text", "91-release-upgrade")
NO_OS_DETAILS = Rule(
    "no OS name, release or kernel (nor \\m \\r \\s \\S \\v)",
    lambda text: not OS_DETAILS.search(str(text)),
)


def case(value, control_id, case_id):
    return pytest.param(value, marks=pytest.mark.controls(control_id), id=case_id)


def _text(facts, path):
    """The file's text on one line (at most 200 characters), or "absent" / "empty"."""
    if facts.stat(path) is None:
        return "absent"
    lines = facts.section("access-files").get(path, [])
    text = " / ".join(line.strip() for line in lines if line.strip())
    return (text[:197] + "...") if len(text) > 200 else (text or "empty")


BANNERS = [
    case("/etc/issue", "CG-BAN-001", "issue"),
    case("/etc/issue.net", "CG-BAN-001", "issue.net"),
    case("/etc/motd", "CG-BAN-002", "motd"),
]


@pytest.mark.parametrize("path", BANNERS)
def test_banner_shows_no_system_details(path, facts, expect):
    expect.equal(_text(facts, path), NO_OS_DETAILS, path)


@pytest.mark.parametrize("path", BANNERS[:2])
def test_banner_shows_the_warning(path, facts, expect, param):
    wanted = " ".join(str(param("CG-BAN-001", "text")).split())
    shown = " ".join(" ".join(facts.section("access-files").get(path, [])).split())
    expect.equal(shown or None, wanted, path)


@pytest.mark.controls("CG-BAN-002")
def test_motd_scripts_show_no_system_details(facts, expect):
    stats = facts.section("access-stat")
    found = [
        stats[f"{MOTD_SCRIPTS_DIR}/{name}"]
        for name in OS_DETAIL_SCRIPTS
        if f"{MOTD_SCRIPTS_DIR}/{name}" in stats
    ]
    observed = "; ".join(f"{s.path.rsplit('/', 1)[1]} {s.mode_text}" for s in found) or "none"
    expect.equal(
        observed,
        Rule(
            "none of " + ", ".join(OS_DETAIL_SCRIPTS) + " executable",
            lambda _: all(s.mode & 0o111 == 0 for s in found),
        ),
        MOTD_SCRIPTS_DIR,
    )


@pytest.mark.parametrize(
    "path", [case(path, "CG-BAN-003", path.rsplit("/", 1)[1]) for path in BANNER_FILES]
)
def test_banner_file_is_protected(path, facts, expect):
    expect.equal(stat_text(facts.stat(path)), absent_or(mode_and_owner(0o644, ["root:root"])), path)
