"""Registers `cityguard demo`: the main job on the example site, start to finish."""

from __future__ import annotations

import argparse

from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="lab up, harden, ipv6 rollout, check, summary on the example site",
    )
    demo.add_argument("--keep-lab", action="store_true", help="leave the lab up afterwards")
    demo.set_defaults(func=run, site=None)  # None: the example site, found when the command runs


def run(args: argparse.Namespace, ctx: Context) -> ExitCode:
    """Lab up, harden, IPv6 rollout, check, summary, lab down (also when a step fails)."""
    from cityguard.check.action import check
    from cityguard.config import content_root, load_site
    from cityguard.evidence.view import check_summary
    from cityguard.harden.action import harden
    from cityguard.harden.view import harden_summary
    from cityguard.ipv6.rollout_action import ipv6_rollout
    from cityguard.ipv6.view import rollout_summary
    from cityguard.lab.site import down_for_site, up_for_site
    from cityguard.workspace import open_workspace

    console = ctx.out
    site_path = args.site or content_root() / "examples" / "site" / "site.yml"
    site = load_site(site_path)
    console.rule("1/5 lab up")
    lab = up_for_site(site)
    console.print(f"lab {lab.lab_id}: {', '.join(h.name for h in lab.hosts)}")
    try:
        console.rule("2/5 harden")
        workspace = open_workspace(site_path)
        hardened = harden(workspace, console=console)
        harden_summary(console, hardened)
        console.rule("3/5 ipv6 rollout")
        rolled = ipv6_rollout(
            workspace, say=lambda line: console.print(line, markup=False, highlight=False)
        )
        rollout_summary(console, rolled, check=False)
        console.rule("4/5 check")
        checked = check(workspace, console=console)
        console.rule("5/5 summary")
        check_summary(console, checked.controls, checked.hosts, checked.run_id)
        ipv6_unmet = sorted(
            {
                c.host
                for c in checked.controls
                if c.control_id.startswith("CG-IPV6-") and c.outcome.value in ("fail", "error")
            }
        )
        if ipv6_unmet:  # said, and counted in the exit code: never hidden to end green
            console.print(
                f"IPv6: the IPv6 controls (CG-IPV6-*) do not pass on {', '.join(ipv6_unmet)}"
            )
        return max(hardened.exit_code, rolled.exit_code, checked.exit_code)
    finally:
        if args.keep_lab:
            console.print("lab kept: 'cityguard lab down' removes it")
        else:
            down_for_site(site)
            console.print(f"lab {lab.lab_id} removed")
