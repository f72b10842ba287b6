"""Registers `cityguard docs controls`: the control reference generated from the catalog."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    docs = commands.add_parser("docs", help="reference documents generated from the content")
    kinds = docs.add_subparsers(dest="docs_command", required=True)
    controls = kinds.add_parser(
        "controls",
        help="every control with scope, verifier, level, severity, parameters (type, limits, "
        "default) and framework mappings, as Markdown (docs/controls.md)",
    )
    controls.add_argument(
        "--output",
        type=Path,
        help="write to this file (e.g. docs/controls.md) instead of stdout",
    )
    controls.set_defaults(func=run_controls)


def run_controls(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.catalog.reference import generate
    from cityguard.config import content_root

    text = generate(content_root() / "policies")
    if args.output is None:
        sys.stdout.write(text)
        return ExitCode.OK
    args.output.write_text(text)
    ctx.err.print(f"wrote {args.output}", markup=False, highlight=False)
    return ExitCode.OK
