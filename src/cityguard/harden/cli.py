"""Registers `cityguard harden`; the action is imported only when the command runs."""

from __future__ import annotations

import argparse

from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("harden", parents=[common], help="enforce the baseline")
    parser.add_argument(
        "--check", action="store_true", help="show what would change; change nothing"
    )
    parser.add_argument("--limit", help="hosts or groups (Ansible limit syntax)")
    parser.add_argument("--tags", help="comma-separated role tags, e.g. ssh,sysctl")
    parser.add_argument("--controls", help="comma-separated control ids")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.harden.action import harden
    from cityguard.harden.view import harden_summary
    from cityguard.workspace import comma_list, open_workspace

    workspace = open_workspace(args.site, comma_list(args.controls))
    outcome = harden(
        workspace,
        limit=args.limit,
        tags=comma_list(args.tags),
        check=args.check,
        console=ctx.out,
        progress=not args.quiet,
    )
    harden_summary(ctx.out, outcome)
    return outcome.exit_code
