"""Registers `cityguard lab up|down|status`: lab hosts on this machine (needs root)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode

FLAVOURS = ("auto", "nspawn", "plain")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    lab = commands.add_parser("lab", help="lab hosts on this machine (needs root)")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_commands.add_parser(
        "up", parents=[common], help="boot one lab host per inventory host"
    )
    up.add_argument("--limit", help="only these hosts or groups")
    up.add_argument(
        "--flavour",
        choices=FLAVOURS,
        default="auto",
        help="nspawn: real systemd; plain: no systemd, faster; auto (default): nspawn, "
        "falling back to plain when nspawn is missing or a host fails to boot under it",
    )
    up.add_argument(
        "--lab-file",
        type=Path,
        metavar="PATH",
        help="the lab description (image packages, services per group) instead of lab.yml "
        "beside the site file; without either, a minimal built-in one",
    )
    up.set_defaults(func=run_up)
    data = lab_commands.add_parser(
        "data",
        parents=[common],
        help="load the sample data of the lab description (databases, file trees) onto the "
        "lab hosts and isolate the restore targets",
    )
    data.add_argument(
        "--lab-file",
        type=Path,
        metavar="PATH",
        help="the lab description instead of lab.yml beside the site file",
    )
    data.set_defaults(func=run_data)
    down = lab_commands.add_parser("down", parents=[common], help="remove the lab, leaving nothing")
    down.add_argument(
        "--orphans",
        action="store_true",
        help="remove leftovers of every cityguard lab on this machine",
    )
    down.set_defaults(func=run_down)
    status = lab_commands.add_parser(
        "status", parents=[common], help="hosts and whether SSH answers"
    )
    status.set_defaults(func=run_status)


def run_up(args: argparse.Namespace, ctx: Context) -> ExitCode:
    import time

    from cityguard.config import load_site
    from cityguard.lab.site import up_for_site

    site = load_site(args.site)
    started = time.monotonic()
    with ctx.out.status("starting lab hosts"):
        lab = up_for_site(site, args.limit, args.flavour, args.lab_file)
    ctx.out.print(
        f"lab {lab.lab_id} up ({lab.flavour}): {len(lab.hosts)} hosts in "
        f"{time.monotonic() - started:.1f} s; ssh config: {lab.ssh_config}"
    )
    return ExitCode.OK


def run_data(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.config import load_site
    from cityguard.lab.site import data_for_site

    site = load_site(args.site)
    description = data_for_site(
        site, args.lab_file, say=lambda line: ctx.out.print(line, markup=False, highlight=False)
    )
    if description.data.empty():
        ctx.out.print(f"{description.source}: no sample data to load", markup=False)
    return ExitCode.OK


def run_down(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.config import load_site
    from cityguard.lab import lab as lab_engine
    from cityguard.lab.site import down_for_site

    if args.orphans:
        found = lab_engine.find_leftovers()
        lab_engine.remove_leftovers(found)
        ctx.out.print(
            "removed leftovers of all cityguard labs"
            if not found.empty()
            else "no lab leftovers on this machine"
        )
        return ExitCode.OK
    lab_id = down_for_site(load_site(args.site))
    ctx.out.print(f"lab {lab_id} removed" if lab_id else "no lab is up for this site")
    return ExitCode.OK


def run_status(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.config import load_site
    from cityguard.lab import lab as lab_engine

    site = load_site(args.site)
    running, hosts = lab_engine.status(site.state_dir)
    if running is None:
        ctx.out.print("no lab is up for this site")
        return ExitCode.OK
    bridges = ", ".join(f"{n.name} on {n.bridge} ({n.ipv4_prefix})" for n in running.networks)
    ctx.out.print(f"lab {running.lab_id} ({running.flavour}), networks: {bridges}")
    for host in hosts:
        state = (
            "ssh ok" if host.ssh else ("running, ssh not answering" if host.running else "stopped")
        )
        ctx.out.print(f"{host.name:<12} {host.networks:<40} {state}", markup=False)
    return ExitCode.OK if all(h.ssh for h in hosts) else ExitCode.PARTIAL
