"""Runs the checks/ suites against hosts and turns each test into evidence.

Named for what it does so it is never confused with the checks/ folder of test suites.
"""

from cityguard.verify.runner import CheckRun, VerifyError, run_checks

__all__ = ["CheckRun", "VerifyError", "run_checks"]
