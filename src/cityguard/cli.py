"""The command line: parse, call the engine, print. Exit codes are those of ExitCode."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from cityguard import __version__, output
from cityguard.ansible import AnsibleError
from cityguard.config import ConfigError, content_root, load_site
from cityguard.evidence import EvidenceError, UnknownRun
from cityguard.exitcodes import ExitCode
from cityguard.harden import harden
from cityguard.lab import LabError
from cityguard.lab import lab as lab_engine
from cityguard.lab.site import down_for_site, up_for_site
from cityguard.verify import VerifyError
from cityguard.verify.action import check
from cityguard.workspace import Workspace, open_workspace

# soft wrap: long messages stay on one line, so logs and greps see them whole
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def default_site() -> Path:
    return Path(os.environ.get("CITYGUARD_SITE", "site.yml"))


def _controls(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _workspace(args: argparse.Namespace) -> Workspace:
    return open_workspace(args.site, _controls(getattr(args, "controls", None)))


def cmd_lab(args: argparse.Namespace) -> ExitCode:
    if args.lab_command == "down" and args.orphans:
        found = lab_engine.find_leftovers()
        lab_engine.remove_leftovers(found)
        console.print(
            "removed leftovers of all cityguard labs"
            if not found.empty()
            else "no lab leftovers on this machine"
        )
        return ExitCode.OK
    site = load_site(args.site)
    if args.lab_command == "up":
        started = time.monotonic()
        with console.status("starting lab hosts"):
            lab = up_for_site(site, args.limit, args.flavour)
        console.print(
            f"lab {lab.lab_id} up ({lab.flavour}): {len(lab.hosts)} hosts in "
            f"{time.monotonic() - started:.1f} s; ssh config: {lab.ssh_config}"
        )
        return ExitCode.OK
    if args.lab_command == "down":
        lab_id = down_for_site(site)
        console.print(f"lab {lab_id} removed" if lab_id else "no lab is up for this site")
        return ExitCode.OK
    running, hosts = lab_engine.status(site.state_dir)
    if running is None:
        console.print("no lab is up for this site")
        return ExitCode.OK
    console.print(f"lab {running.lab_id} ({running.flavour}), bridge {running.bridge}")
    for host in hosts:
        state = (
            "ssh ok" if host.ssh else ("running, ssh not answering" if host.running else "stopped")
        )
        console.print(f"{host.name:<12} {host.ipv6:<28} {host.ipv4:<16} {state}")
    return ExitCode.OK if all(h.ssh for h in hosts) else ExitCode.PARTIAL


def cmd_harden(args: argparse.Namespace) -> ExitCode:
    workspace = _workspace(args)
    tags = _controls(args.tags)
    outcome = harden(
        workspace,
        limit=args.limit,
        tags=tags,
        check=args.check,
        console=console,
        progress=not args.quiet,
    )
    output.harden_summary(console, outcome.result, args.check, outcome.run_id, outcome.controls)
    return outcome.exit_code


def cmd_check(args: argparse.Namespace) -> ExitCode:
    workspace = _workspace(args)
    outcome = check(
        workspace,
        limit=args.limit,
        console=errors,
        progress=args.format == "table" and not args.quiet,
    )
    if args.format == "json":
        print(output.controls_json(outcome.controls, outcome.run_id))
    else:
        output.check_summary(console, outcome.controls, outcome.hosts, outcome.run_id)
    return outcome.exit_code


def cmd_evidence(args: argparse.Namespace) -> ExitCode:
    workspace = open_workspace(args.site)
    with workspace.open_evidence() as store:
        if args.evidence_command == "list":
            output.runs_table(console, store.list_runs(limit=args.limit))
            return ExitCode.OK
        run = store.get_run(args.run_id)
        controls = store.control_results(run.id)
        if args.format == "json":
            print(output.controls_json(controls, run.id))
        else:
            console.print(f"run {run.id} ({run.command}) on {run.site} by {run.operator}")
            output.check_summary(console, controls, [], run.id)
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> ExitCode:
    """The main job on the example site: lab up, harden, check, summary, lab down."""
    site = load_site(args.site)
    console.rule("1/4 lab up")
    lab = up_for_site(site)
    console.print(f"lab {lab.lab_id}: {', '.join(h.name for h in lab.hosts)}")
    try:
        console.rule("2/4 harden")
        workspace = open_workspace(args.site)
        hardened = harden(workspace, console=console)
        output.harden_summary(console, hardened.result, False, hardened.run_id, hardened.controls)
        console.rule("3/4 check")
        checked = check(workspace, console=console)
        console.rule("4/4 summary")
        output.check_summary(console, checked.controls, checked.hosts, checked.run_id)
        return max(hardened.exit_code, checked.exit_code)
    finally:
        if args.keep_lab:
            console.print("lab kept: 'cityguard lab down' removes it")
        else:
            down_for_site(site)
            console.print(f"lab {lab.lab_id} removed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cityguard",
        description="Harden, check and prove a city's servers (and, as they land: IPv6, DR "
        "drills, eIDAS).",
        epilog="exit codes: 0 ok; 1 something checked failed; 2 usage or configuration error; "
        "3 partial (hosts unreachable or a step could not run); 4 internal error",
    )
    parser.add_argument("--version", action="version", version=f"cityguard {__version__}")
    site_parent = argparse.ArgumentParser(add_help=False)
    site_parent.add_argument(
        "--site",
        type=Path,
        default=default_site(),
        help="site file (default: $CITYGUARD_SITE or ./site.yml)",
    )
    site_parent.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="lab hosts on this machine (needs root)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser(
        "up", parents=[site_parent], help="boot one lab host per inventory host"
    )
    up.add_argument("--limit", help="only these hosts or groups")
    up.add_argument(
        "--flavour",
        choices=lab_engine.FLAVOURS,
        default="auto",
        help="nspawn: real systemd; plain: no systemd, faster; auto (default): nspawn, "
        "falling back to plain when nspawn is missing or a host fails to boot under it",
    )
    down = lab_sub.add_parser("down", parents=[site_parent], help="remove the lab, leaving nothing")
    down.add_argument(
        "--orphans",
        action="store_true",
        help="remove leftovers of every cityguard lab on this machine",
    )
    lab_sub.add_parser("status", parents=[site_parent], help="hosts and whether SSH answers")
    lab.set_defaults(func=cmd_lab)

    hard = sub.add_parser("harden", parents=[site_parent], help="enforce the baseline")
    hard.add_argument("--check", action="store_true", help="show what would change; change nothing")
    hard.add_argument("--limit", help="hosts or groups (Ansible limit syntax)")
    hard.add_argument("--tags", help="comma-separated role tags, e.g. ssh,sysctl")
    hard.add_argument("--controls", help="comma-separated control ids")
    hard.set_defaults(func=cmd_harden)

    chk = sub.add_parser("check", parents=[site_parent], help="prove the baseline (read-only)")
    chk.add_argument("--limit", help="hosts or groups (Ansible limit syntax)")
    chk.add_argument("--controls", help="comma-separated control ids")
    chk.add_argument("--format", choices=("table", "json"), default="table")
    chk.set_defaults(func=cmd_check)

    ev = sub.add_parser("evidence", help="runs and results in the evidence store")
    ev_sub = ev.add_subparsers(dest="evidence_command", required=True)
    ls = ev_sub.add_parser("list", parents=[site_parent], help="recent runs")
    ls.add_argument("--limit", type=int, default=20)
    show = ev_sub.add_parser("show", parents=[site_parent], help="one run's control results")
    show.add_argument("run_id")
    show.add_argument("--format", choices=("table", "json"), default="table")
    ev.set_defaults(func=cmd_evidence)

    demo = sub.add_parser(
        "demo", parents=[site_parent], help="lab up, harden, check, summary on the example site"
    )
    demo.add_argument("--keep-lab", action="store_true", help="leave the lab up afterwards")
    demo.set_defaults(func=cmd_demo, site=content_root() / "examples" / "site" / "site.yml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], ExitCode] = args.func
    try:
        return int(func(args))
    except ConfigError as error:
        for problem in error.problems:
            errors.print(str(problem), markup=False, highlight=False)
        return int(ExitCode.USAGE)
    except UnknownRun as error:
        errors.print(str(error), markup=False)
        return int(ExitCode.USAGE)
    except (LabError, AnsibleError, VerifyError, EvidenceError) as error:
        errors.print(f"error: {error}", markup=False, highlight=False)
        return int(ExitCode.PARTIAL)
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    except Exception:
        errors.print("internal error (a bug in cityguard); details follow", markup=False)
        traceback.print_exc()
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
