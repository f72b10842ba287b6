"""Owner, group and mode of sensitive files: one check per file, from one `stat` of them all."""

import fnmatch

import pytest

from cityguard.verify.facts import watch_paths
from cityguard.verify.sections.catalog import parameter_items
from cityguard.verify.sections.system_files import Entry

ITEMS = parameter_items("files.yml", "files")
CASES = [pytest.param(c, p, marks=pytest.mark.controls(c), id=f"{c}:{p}") for c, p in ITEMS]
watch_paths(*(path for _, path in ITEMS if "*" not in path))
SSHD_DROPINS = "/etc/ssh/sshd_config.d/"


def _observed(facts, path):
    """The entries the path names: one for a file, every match for a pattern."""
    if "*" not in path:
        stat = facts.stat(path)
        return [Entry(path, stat.mode, stat.owner, stat.group)] if stat else []
    if not path.startswith(SSHD_DROPINS):
        raise KeyError(f"no fact section lists the files of {path}")
    return [e for e in facts.section("system-sshd-dropins") if fnmatch.fnmatch(e.path, path)]


@pytest.mark.parametrize(("control_id", "path"), CASES)
def test_file_permissions(control_id, path, facts, expect, param):
    """Observed owner:group mode against the same with anything wider taken away: equal when
    the file is as strict as the control asks (or stricter)."""
    wanted = param(control_id, "files")[path]
    limit = int(wanted["mode"], 8)
    entries = _observed(facts, path)
    if not entries:
        # a file that does not exist cannot be read by anyone: fine where the control says so
        expect.equal("(absent)", "(absent)" if wanted.get("optional") else "present", path)
        return

    def compliant(entry):
        group = entry.group if entry.group in wanted["groups"] else wanted["groups"][0]
        return Entry(entry.path, entry.mode & limit, wanted["owner"], group)

    expect.equal(
        "; ".join(e.describe() for e in entries),
        "; ".join(compliant(e).describe() for e in entries),
    )
