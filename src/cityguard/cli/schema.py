"""Registers `cityguard schema site`: the site file's JSON Schema, for editors and CI."""

from __future__ import annotations

import argparse
import json
import sys

from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    schema = commands.add_parser("schema", help="JSON Schemas of the files cityguard reads")
    kinds = schema.add_subparsers(dest="schema_command", required=True)
    site = kinds.add_parser(
        "site", help="the site file's JSON Schema, with every area's section (JSON on stdout)"
    )
    site.set_defaults(func=run_site)


def run_site(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.config.schema import site_schema

    sys.stdout.write(json.dumps(site_schema(), indent=2) + "\n")
    return ExitCode.OK
