"""`cityguard check`: prove the baseline on hosts (read-only) with the checks/ suites.

action: action.py (runs cityguard.verify, rolls up, applies waivers, records evidence);
rendering: the shared result tables of cityguard.evidence.view; CLI registration: cli.py.
"""
