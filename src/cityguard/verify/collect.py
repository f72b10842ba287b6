"""Which checks exist and which controls each one proves, without touching any host.

pytest collects the check suites in a subprocess (as a check run does, so the modules import
the same way) and the plugin writes check id -> control ids for every collected item. The
catalog is validated against this: a control naming a check that does not exist, or a check
naming a control that does not exist, would otherwise only show up as a missing result.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from cityguard.core import process
from cityguard.verify.runner import VerifyError

# pytest exit codes: 0 collected, 5 nothing collected; anything else means collection broke
_COLLECTED = (0, 5)
_ERROR_HEADER = re.compile(r"^_+ ERROR collecting (\S+) _+$")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def collect_argv(checks_dir: Path, collect_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(checks_dir),
        "--collect-only",
        "-q",
        "-p",
        "cityguard.verify.plugin",
        "-p",
        "no:cacheprovider",
        # checks assert through `expect`, never bare `assert`: rewriting every module's asserts
        # (not cached: no bytecode is written) cost half the collection's CPU
        "--assert=plain",
        # as the runner does: paths in messages are relative to the checks, wherever we run
        "--rootdir",
        str(checks_dir),
        f"--cityguard-collect={collect_file}",
    ]


def collect_checks(checks_dir: Path) -> dict[str, tuple[str, ...]]:
    """Map every check id (`module::test_name[param]`) to the control ids of its marker."""
    if not checks_dir.is_dir():
        raise VerifyError(f"checks directory not found: {checks_dir}")
    with tempfile.TemporaryDirectory(prefix="cityguard-collect-") as scratch:
        collect_file = Path(scratch) / "checks.json"
        completed = process.run(
            collect_argv(checks_dir, collect_file),
            what=f"collecting the checks in {checks_dir}",
            timeout=None,
            env={"PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )
        text = collect_file.read_text() if collect_file.exists() else None
    if completed.returncode not in _COLLECTED:
        raise VerifyError(
            f"collecting the checks in {checks_dir} failed (pytest rc={completed.returncode}): "
            + _summary(completed.stdout + completed.stderr)
        )
    if text is None:
        if completed.returncode == 5:
            return {}
        raise VerifyError(f"collecting the checks in {checks_dir} wrote no result")
    table = json.loads(text)
    return {check_id: tuple(controls) for check_id, controls in sorted(table.items())}


def _summary(output: str) -> str:
    """The collection errors on one line (`test_x.py: SyntaxError: ...`), else pytest's tail."""
    errors: dict[str, str] = {}
    module = None
    for line in output.splitlines():
        header = _ERROR_HEADER.match(line)
        if header:
            module = header.group(1)
            errors[module] = "error"
        elif module is not None and line.startswith("E  ") and _EXCEPTION.match(line[1:].strip()):
            errors[module] = line[1:].strip()
        elif line.startswith("="):
            module = None
    if errors:
        return "; ".join(f"{name}: {error}" for name, error in errors.items())
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not set(line) <= set("=-_! ")]
    return " | ".join(lines[-3:]) or "no output"
