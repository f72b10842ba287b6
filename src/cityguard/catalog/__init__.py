"""The control catalog (policies/): controls, baselines, the selection a run is judged against,
and the waivers that exempt hosts from a control."""

from cityguard.catalog.controls import (
    CONTROL_ID,
    UNMAPPED,
    VERIFIER_SCOPES,
    Baseline,
    Catalog,
    Control,
    Scope,
    Selection,
    Verifier,
    expand_checks,
    load_baseline,
    load_catalog,
    load_frameworks,
    select,
)

__all__ = [
    "CONTROL_ID",
    "UNMAPPED",
    "VERIFIER_SCOPES",
    "Baseline",
    "Catalog",
    "Control",
    "Scope",
    "Selection",
    "Verifier",
    "expand_checks",
    "load_baseline",
    "load_catalog",
    "load_frameworks",
    "select",
]
