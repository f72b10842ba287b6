"""`cityguard harden`: enforce the baseline with the site's playbooks."""

from cityguard.harden.action import HardenOutcome, harden

__all__ = ["HardenOutcome", "harden"]
