"""Services and clients a municipal server does not need, and a local-only mail agent."""

import pytest

from cityguard.verify.sections.catalog import holds, parameter_items
from cityguard.verify.sections.services import package, unit


def packages_of(control_id):
    return [
        pytest.param(c, p, marks=pytest.mark.controls(c), id=p)
        for c, p in parameter_items("services.yml", "packages")
        if c == control_id
    ]


@pytest.mark.parametrize(("control_id", "name"), packages_of("CG-SVC-001"))
def test_service_not_in_use(control_id, name, facts, expect, param):
    """Not installed, or (CIS's alternative) every unit it ships masked and stopped."""
    found = package(facts.section("system-packages"), name)
    units = [
        unit(facts.section("system-units"), u)
        for u in param(control_id, "packages")[name].get("units") or []
    ]
    stopped = bool(units) and all(u.file_state == "masked" and u.active != "active" for u in units)
    observed = "; ".join([found.describe(), *(u.describe() for u in units if found.installed)])
    holds(
        expect,
        not found.installed or stopped,
        observed,
        "not installed, or its units masked and stopped",
        "",
    )


@pytest.mark.parametrize(("control_id", "name"), packages_of("CG-SVC-002"))
def test_client_not_installed(control_id, name, facts, expect):
    found = package(facts.section("system-packages"), name)
    holds(expect, not found.installed, found.describe(), "not installed", "")


@pytest.mark.controls("CG-SVC-003")
def test_mta_local_only(facts, expect, param):
    ports = {int(p) for p in param("CG-SVC-003", "ports")}
    smtp = [
        listener
        for listener in facts.section("system-listeners")
        if listener.protocol == "tcp" and listener.port in ports
    ]
    exposed = [f"{s.address}:{s.port}" for s in smtp if not s.loopback]
    observed = ", ".join(f"{s.address}:{s.port}" for s in smtp) or "nothing listens"
    holds(
        expect,
        not exposed,
        observed,
        "loopback only",
        f"SMTP ports {', '.join(map(str, sorted(ports)))}",
    )
