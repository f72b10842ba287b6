"""Registers `cityguard ipv6` and the site file's `ipv6` section; the actions are imported only
when a command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from cityguard.config.sections import register_section
from cityguard.core.arguments import positive_int
from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    register_section(
        "ipv6",
        "cityguard.ipv6.settings:Ipv6Settings",
        "IPv6: the site's addressing plan file and how its rollout proceeds.",
    )
    ipv6 = commands.add_parser("ipv6", help="IPv6 addressing plan and phased rollout")
    sub = ipv6.add_subparsers(dest="ipv6_command", required=True)
    plan = sub.add_parser(
        "plan", parents=[common], help="validate the IPv6 plan; print and export it"
    )
    plan.add_argument("--format", choices=("table", "json"), default="table")
    plan.add_argument(
        "--out",
        type=Path,
        help="also write the exports here (plan.json, NetBox CSVs, DNS zone fragments)",
    )
    plan.set_defaults(func=run_plan)
    rollout = sub.add_parser(
        "rollout",
        parents=[common],
        help="roll the plan out: routers, a canary, then batches, the IPv6 checks as a gate "
        "after each, a failed batch rolled back",
    )
    rollout.add_argument(
        "--check", action="store_true", help="show what would change (diff); change nothing"
    )
    rollout.add_argument(
        "--batch-size",
        type=positive_int,
        help="hosts per batch after the canary (default: the site's ipv6.batch_size)",
    )
    rollout.set_defaults(func=run_rollout)


def run_plan(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.ipv6.action import ipv6_plan
    from cityguard.ipv6.view import plan_summary
    from cityguard.workspace import open_workspace

    outcome = ipv6_plan(open_workspace(args.site), args.out)
    plan_summary(ctx.out, ctx.err, outcome, args.format)
    return outcome.exit_code


def run_rollout(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.ipv6.rollout_action import ipv6_rollout
    from cityguard.ipv6.view import rollout_summary
    from cityguard.workspace import open_workspace

    outcome = ipv6_rollout(
        open_workspace(args.site),
        check=args.check,
        batch_size=args.batch_size,
        say=lambda line: ctx.err.print(line, markup=False, highlight=False),
    )
    rollout_summary(ctx.out, outcome, check=args.check)
    return outcome.exit_code
