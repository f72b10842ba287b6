"""Registers `cityguard check`; the action is imported only when the command runs."""

from __future__ import annotations

import argparse

from cityguard.core.arguments import positive_int
from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("check", parents=[common], help="prove the baseline (read-only)")
    parser.add_argument("--limit", help="hosts or groups (Ansible limit syntax)")
    parser.add_argument("--controls", help="comma-separated control ids")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--host-timeout",
        type=positive_int,
        default=300,
        metavar="SECONDS",
        help="stop checking a host that has not finished after this long (default 300)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.check.action import check
    from cityguard.evidence.view import check_summary, controls_json
    from cityguard.workspace import comma_list, open_workspace

    workspace = open_workspace(args.site, comma_list(args.controls))
    outcome = check(
        workspace,
        limit=args.limit,
        host_timeout_s=args.host_timeout,
        console=ctx.err,
        progress=args.format == "table" and not args.quiet,
    )
    if args.format == "json":
        print(controls_json(outcome.controls, outcome.run_id, outcome.hosts))
    else:
        check_summary(ctx.out, outcome.controls, outcome.hosts, outcome.run_id)
    return outcome.exit_code
