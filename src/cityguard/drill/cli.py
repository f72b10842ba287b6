"""Registers `cityguard backup` and `cityguard drill` and the site file's `drill` section; the
actions are imported only when a command runs."""

from __future__ import annotations

import argparse

from cityguard.config.sections import register_section
from cityguard.core.arguments import positive_int
from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    register_section(
        "drill",
        "cityguard.drill.settings:DrillSettings",
        "Disaster recovery: the backup and drill plans of the site's information systems.",
    )
    # what several subcommands take, declared once: the system, and the output format
    system = argparse.ArgumentParser(add_help=False)
    system.add_argument("system", help="information system (its plan's system name)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=("table", "json"), default="table")

    backup = commands.add_parser("backup", help="back up an information system with restic")
    backup_sub = backup.add_subparsers(dest="backup_command", required=True)
    init = backup_sub.add_parser(
        "init", parents=[common, system], help="create the system's repository"
    )
    init.set_defaults(func=run_init)
    run = backup_sub.add_parser(
        "run", parents=[common, system, output], help="back the system up now"
    )
    run.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="stop restic and fail the backup if it has not finished after SECONDS "
        "(default: the plan's backup_timeout, 6h unless it says otherwise)",
    )
    run.set_defaults(func=run_backup)

    deploy = backup_sub.add_parser(
        "deploy",
        parents=[common],
        help="put the backups of source-host plans on their hosts (restic, agent, credentials, "
        "timer)",
    )
    deploy.add_argument(
        "systems",
        nargs="*",
        metavar="SYSTEM",
        help="systems to deploy (default: every plan with backup_runs_on: source-host)",
    )
    deploy.add_argument(
        "--check", action="store_true", help="show what would change; change nothing"
    )
    deploy.set_defaults(func=run_deploy)

    undelete = backup_sub.add_parser(
        "undelete",
        parents=[common, system],
        help="undo the deletes made in the S3 repository since an incident (delete markers)",
    )
    undelete.add_argument(
        "--since",
        required=True,
        metavar="TIME",
        help="the incident's start, ISO 8601 with a zone (2026-12-03T06:00:00Z); older delete "
        "markers are restic's own and stay",
    )
    undelete.add_argument("--check", action="store_true", help="list what would be restored")
    undelete.set_defaults(func=run_undelete)

    offsite = backup_sub.add_parser(
        "offsite",
        parents=[common, system],
        help="verify the S3 bucket's Object Lock (read back); --setup creates or repairs it",
    )
    offsite.add_argument(
        "--setup", action="store_true", help="create the bucket or re-apply its configuration"
    )
    offsite.set_defaults(func=run_offsite)

    drill = commands.add_parser("drill", help="restore drills with measured RTO and RPO")
    drill_sub = drill.add_subparsers(dest="drill_command", required=True)
    drill_run = drill_sub.add_parser(
        "run",
        parents=[common, system, output],
        help="restore the latest backup onto the scratch host and verify",
    )
    drill_run.set_defaults(func=run_drill)
    schedule = drill_sub.add_parser(
        "schedule",
        parents=[common],
        help="install backup, drill and (S3 plans) off-site bucket timers, or --list the next runs",
    )
    schedule.add_argument("--list", action="store_true", help="show the next runs; change nothing")
    schedule.add_argument(
        "--unit-dir", default="/etc/systemd/system", help="where the units are written"
    )
    schedule.set_defaults(func=run_schedule)
    status = drill_sub.add_parser(
        "status", parents=[common, output], help="backup age and last drill per system"
    )
    status.set_defaults(func=run_status)


def run_init(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.action import backup_init
    from cityguard.workspace import open_workspace

    ctx.out.print(backup_init(open_workspace(args.site), args.system), markup=False)
    return ExitCode.OK


def run_backup(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.action import backup_run
    from cityguard.drill.view import backup_summary
    from cityguard.workspace import open_workspace

    outcome = backup_run(open_workspace(args.site), args.system, args.timeout)
    backup_summary(ctx.out, outcome, args.format)
    return outcome.exit_code


def run_deploy(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.deploy import backup_deploy
    from cityguard.workspace import open_workspace

    outcome = backup_deploy(open_workspace(args.site), args.systems, check=args.check)
    for line in outcome.lines:
        ctx.out.print(line, markup=False, highlight=False)
    return outcome.exit_code


def run_undelete(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.undelete import backup_undelete, parse_since
    from cityguard.workspace import open_workspace

    since = parse_since(args.since)
    outcome = backup_undelete(open_workspace(args.site), args.system, since, check=args.check)
    for line in outcome.lines:
        ctx.out.print(line, markup=False, highlight=False)
    return outcome.exit_code


def run_drill(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.action import drill_run
    from cityguard.drill.progress import silent
    from cityguard.drill.view import drill_summary
    from cityguard.workspace import open_workspace

    def say(line: str) -> None:
        ctx.err.print(line, markup=False, highlight=False)

    quiet = args.format != "table" or args.quiet
    outcome = drill_run(open_workspace(args.site), args.system, silent if quiet else say)
    drill_summary(ctx.out, outcome, args.format)
    return outcome.exit_code


def run_status(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.status import drill_status
    from cityguard.drill.view import status_table
    from cityguard.workspace import open_workspace

    rows = drill_status(open_workspace(args.site))
    status_table(ctx.out, rows, args.format)
    return ExitCode.OK


def run_schedule(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.status import install_timers, next_runs
    from cityguard.workspace import open_workspace

    workspace = open_workspace(args.site)
    if args.list:
        for system, kind, expression, runs in next_runs(workspace):
            ctx.out.print(f"{system} {kind} ({expression}): {'; '.join(runs)}", markup=False)
        return ExitCode.OK
    for line in install_timers(workspace, args.site, args.unit_dir):
        ctx.out.print(line, markup=False)
    return ExitCode.OK


def run_offsite(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.drill.action import backup_offsite
    from cityguard.workspace import open_workspace

    outcome = backup_offsite(open_workspace(args.site), args.system, setup=args.setup)
    for line in outcome.done:
        ctx.out.print(f"{outcome.bucket}: {line}", markup=False)
    for warning in outcome.warnings:
        ctx.out.print(f"{outcome.bucket}: warning: {warning}", style="yellow", markup=False)
    for problem in outcome.problems:
        ctx.out.print(f"{outcome.bucket}: weakened: {problem}", style="red", markup=False)
    if not outcome.problems:
        ctx.out.print(f"{outcome.bucket}: Object Lock as planned", markup=False)
    return outcome.exit_code
