"""Registers `cityguard eidas plan|apply|verify|export`; the action is imported when it runs."""

from __future__ import annotations

import argparse

from cityguard.core.context import Context
from cityguard.core.exitcodes import ExitCode


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    from cityguard.config.sections import register_section

    register_section(
        "eidas",
        "cityguard.eidas.settings:EidasSettings",
        "The eIDAS identity broker: Keycloak on loopback, its admin, the realm file.",
    )
    parser = commands.add_parser("eidas", help="eIDAS identity broker on Keycloak (realm as code)")
    sub = parser.add_subparsers(dest="eidas_command", required=True)
    for name, text in (
        ("plan", "show what apply would change in Keycloak; change nothing"),
        ("apply", "make the realm as the realm file says; record each change"),
        ("verify", "judge the live realm against the eIDAS profile rules"),
        ("export", "export the realm (secrets masked) into the run directory"),
    ):
        command = sub.add_parser(name, parents=[common], help=text)
        command.add_argument("--format", choices=("table", "json"), default="table")
        command.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from cityguard.eidas import action
    from cityguard.eidas.view import show

    eidas = action.open_eidas(args.site)
    handler = {
        "plan": action.plan,
        "apply": action.apply,
        "verify": action.verify,
        "export": action.export,
    }[args.eidas_command]
    outcome = handler(eidas)
    show(ctx.out, outcome, args.format)
    return outcome.exit_code
