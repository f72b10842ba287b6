"""Keeping secrets out of what cityguard writes down.

Secrets reach cityguard through environment variables and files (DESIGN.md). Tools it drives
may record their whole environment (ansible-runner writes it to artifacts/<ident>/command), so
anything whose name says it is a secret is replaced before the record is kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|_DSN$|_KEY$|^DSN$",
    re.IGNORECASE,
)
REDACTED = "(redacted)"


def redact_environment(env: dict[str, str]) -> dict[str, str]:
    return {name: REDACTED if SECRET_NAME.search(name) else value for name, value in env.items()}


def scrub_runner_command(artifacts_dir: Path) -> None:
    """Redact secret-named variables in ansible-runner's record of the run's environment."""
    path = artifacts_dir / "command"
    if not path.exists():
        return
    record = json.loads(path.read_text())
    if isinstance(record.get("env"), dict):
        record["env"] = redact_environment(record["env"])
        path.write_text(json.dumps(record))
