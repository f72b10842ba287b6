"""Control parameters are typed: checked in the catalog, the baseline and the site, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityguard.catalog import load_catalog
from cityguard.catalog.params import ParamSchema, check_value
from cityguard.catalog.site_rules import CatalogRule
from cityguard.config import ConfigError, load_site
from cityguard.workspace import open_workspace
from faults.sites import SITE, make_site

INT = {"type": "int"}
POLICIES = Path(__file__).resolve().parents[3] / "policies"


def site_problems(tmp_path: Path, site: str) -> list[str]:
    path = make_site(tmp_path, site)
    with pytest.raises(ConfigError) as caught:
        load_site(path, rules=[CatalogRule()])
    return [line.replace(f"{path}:", "site.yml:") for line in caught.value.lines()]


def with_parameters(block: str) -> str:
    return SITE.replace("parameters: {}\n", block)


def test_every_parameter_of_every_control_has_a_schema_its_default_fits() -> None:
    catalog = load_catalog(POLICIES)  # raises on a parameter without schema or a bad default
    for control in catalog.controls.values():
        assert set(control.parameters) == set(control.parameter_schema), control.id


def test_wrong_types_ranges_and_names_are_all_reported(tmp_path: Path) -> None:
    site = with_parameters(
        "parameters:\n"
        "  CG-SSH-003: {max_auth_tries: -1}\n"
        "  CG-SSH-009: {client_alive_interval: '300', client_alive_count_max: 1000000000000}\n"
        "  CG-SSH-011: {log_level: LOUD, log_levle: INFO}\n"
        "  CG-FW-004:\n"
        "    services:\n"
        "      web: [{name: http, port: 80, protocol: sctp}]\n"
    )
    assert site_problems(tmp_path, site) == [
        "site.yml:8: parameters.CG-SSH-003.max_auth_tries: must be at least 1, got -1",
        "site.yml:9: parameters.CG-SSH-009.client_alive_interval: must be a whole number, got text",
        "site.yml:9: parameters.CG-SSH-009.client_alive_count_max: must be at most 10, "
        "got 1000000000000",
        "site.yml:10: parameters.CG-SSH-011.log_level: must be one of INFO, VERBOSE",
        "site.yml:10: parameters.CG-SSH-011.log_levle: unknown parameter of CG-SSH-011 "
        "(its parameters: log_level)",
        "site.yml:13: parameters.CG-FW-004.services.web[0].protocol: must be one of tcp, udp",
    ]


def test_a_partial_override_of_a_record_is_accepted(tmp_path: Path) -> None:
    site = with_parameters(
        "parameters:\n"
        "  CG-FILE-001: {files: {/etc/shadow: {mode: '0600'}}}\n"
        "  CG-NET-001: {settings: {net.ipv4.conf.all.accept_redirects: '0'}}\n"
    )
    loaded = load_site(make_site(tmp_path, site), rules=[CatalogRule()])
    assert loaded.parameters["CG-FILE-001"] == {"files": {"/etc/shadow": {"mode": "0600"}}}


def test_overrides_and_waivers_outside_the_baseline_are_errors(tmp_path: Path) -> None:
    level2 = "CG-SUDO-004"  # a level-2 control: not in municipal-server
    site = with_parameters(f"parameters:\n  {level2}: {{allowed: []}}\n").replace(
        "waivers: []\n",
        f"waivers:\n  - control: {level2}\n    hosts: [web]\n"
        "    justification: needed by the old app\n    approver: CISO\n    expires: 2030-01-01\n",
    )
    assert site_problems(tmp_path, site) == [
        f"site.yml:8: parameters.{level2}: {level2} is not in baseline municipal-server, "
        "so this does nothing",
        f"site.yml:10: waivers[0].control: {level2} is not in baseline municipal-server, "
        "so this does nothing",
    ]


def test_the_workspace_refuses_bad_parameters_before_anything_runs(tmp_path: Path) -> None:
    site = with_parameters("parameters:\n  CG-SSH-003: {max_auth_tries: 10000}\n")
    with pytest.raises(ConfigError) as caught:
        open_workspace(make_site(tmp_path, site))
    assert caught.value.lines()[0].endswith("max_auth_tries: must be at most 10, got 10000")


def test_the_baseline_overrides_are_checked(tmp_path: Path) -> None:
    import shutil

    from cityguard.catalog import load_baseline

    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "policies" / "baselines" / "bad.yml").write_text(
        "name: bad\ntitle: Bad\nlevels: [1]\nparameters:\n"
        "  CG-SSH-003: {max_auth_tries: x}\n  CG-SUDO-004: {allowed: []}\n"
    )
    catalog = load_catalog(tmp_path / "policies")
    with pytest.raises(ConfigError) as caught:
        load_baseline(tmp_path / "policies", "bad", catalog)
    assert [line.split(": ", 1)[1] for line in caught.value.lines()] == [
        "parameters.CG-SSH-003.max_auth_tries: must be a whole number, got text",
        "parameters.CG-SUDO-004: CG-SUDO-004 is not selected by this baseline",
    ]


@pytest.mark.parametrize(
    "schema, value, expected",
    [
        ({"type": "bool"}, 1, [((), "must be true or false, got 1")]),
        ({"type": "int", "min": 0}, True, [((), "must be a whole number, got true")]),
        ({"type": "str", "pattern": "[0-7]{3}"}, "0999", [((), "must match the pattern [0-7]{3}")]),
        (
            {"type": "list", "items": {"type": "int"}, "min_items": 1},
            [],
            [((), "must have at least 1 items, got 0")],
        ),
        (
            {
                "type": "map",
                "keys": {"type": "str", "pattern": "[a-z]+"},
                "values": {"type": "int"},
            },
            {"A": 1, "b": "x"},
            [
                (("A",), "key must match the pattern [a-z]+"),
                (("b",), "must be a whole number, got text"),
            ],
        ),
        (
            {
                "type": "record",
                "fields": {"a": {"type": "int"}, "b": {"type": "int", "optional": True}},
            },
            {"c": 1},
            [(("c",), "unknown key (allowed: a, b)"), (("a",), "required key is missing")],
        ),
    ],
)
def test_check_value(schema: dict[str, object], value: object, expected: list[object]) -> None:
    assert check_value(value, ParamSchema.model_validate(schema)) == expected


def test_a_schema_with_keys_its_type_does_not_take_is_refused() -> None:
    with pytest.raises(ValueError, match="type str takes no min"):
        ParamSchema.model_validate({"type": "str", "min": 1})
