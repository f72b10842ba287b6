"""Registers `cityguard evidence list|show`: read the evidence store (never writes it)."""

from __future__ import annotations

import argparse

from cityguard.core.arguments import positive_int
from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    evidence = commands.add_parser("evidence", help="runs and results in the evidence store")
    evidence_commands = evidence.add_subparsers(dest="evidence_command", required=True)
    listing = evidence_commands.add_parser("list", parents=[common], help="recent runs")
    listing.add_argument(
        "--limit", type=positive_int, default=20, help="how many runs (default 20)"
    )
    listing.set_defaults(func=run_list)
    show = evidence_commands.add_parser(
        "show", parents=[common], help="everything one run recorded"
    )
    show.add_argument("run_id")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.add_argument(
        "--diff", action="store_true", help="print each change's diff after the tables"
    )
    show.set_defaults(func=run_show)


def run_list(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.evidence.view import runs_table
    from cityguard.workspace import open_evidence_for

    with open_evidence_for(args.site) as store:
        runs_table(ctx.out, store.list_runs(limit=args.limit))
    return ExitCode.OK


def run_show(args: argparse.Namespace, ctx: Context) -> ExitCode:
    """Every record of one run: header, control results, steps, measurements, changes, files."""
    from cityguard.evidence.view import load_run_evidence, run_evidence_json, show_run
    from cityguard.workspace import open_evidence_for

    with open_evidence_for(args.site) as store:
        evidence = load_run_evidence(store, args.run_id)
    if args.format == "json":
        print(run_evidence_json(evidence))  # diffs are always in the JSON
    else:
        show_run(ctx.out, evidence, diffs=args.diff)
    return ExitCode.OK
