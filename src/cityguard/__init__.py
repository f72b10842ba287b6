"""cityguard: hardening, IPv6, disaster-recovery drills and eIDAS, with evidence for auditors."""

__version__ = "0.1.0"
