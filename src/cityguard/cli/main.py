"""The command line: a table of commands that areas register into, and one error policy.

Each area's `cli` module adds its parsers and names a handler ``(args, ctx) -> ExitCode``;
handlers import their actions when they run, so `cityguard --help` loads no heavy library.
Every expected failure is a CityguardError that knows its exit code and its lines.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from cityguard import __version__
from cityguard.check import cli as check_cli
from cityguard.cli import demo, docs, evidence, schema
from cityguard.core.context import Context
from cityguard.core.errors import CityguardError
from cityguard.core.exitcodes import ExitCode
from cityguard.drill import cli as drill_cli
from cityguard.eidas import cli as eidas_cli
from cityguard.harden import cli as harden_cli
from cityguard.ipv6 import cli as ipv6_cli
from cityguard.lab import cli as lab_cli

Register = Callable[
    ["argparse._SubParsersAction[argparse.ArgumentParser]", argparse.ArgumentParser], None
]

#: Every command, in the order `--help` lists them. A new area adds its register here.
COMMANDS: tuple[Register, ...] = (
    lab_cli.register,
    harden_cli.register,
    check_cli.register,
    eidas_cli.register,
    drill_cli.register,
    ipv6_cli.register,
    evidence.register,
    schema.register,
    docs.register,
    demo.register,
)

EPILOG = (
    "exit codes: 0 ok; 1 something checked failed; 2 usage or configuration error; "
    "3 partial (hosts unreachable or a step could not run); 4 internal error"
)


def default_site() -> Path:
    return Path(os.environ.get("CITYGUARD_SITE", "site.yml"))


def common_options() -> argparse.ArgumentParser:
    """Options every site command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--site",
        type=Path,
        default=default_site(),
        help="site file (default: $CITYGUARD_SITE or ./site.yml)",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cityguard",
        description="Harden, check and prove a city's servers (and, as they land: IPv6, DR "
        "drills, eIDAS).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"cityguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    common = common_options()
    for register in COMMANDS:
        register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None, ctx: Context | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = ctx or Context()
    handler: Callable[[argparse.Namespace, Context], ExitCode] = args.func
    try:
        return int(handler(args, ctx))
    except CityguardError as error:
        for line in error.lines():
            ctx.err.print(line, markup=False, highlight=False)
        return int(error.exit_code)
    except KeyboardInterrupt:
        ctx.err.print("interrupted", markup=False)
        return 130
    except Exception:
        ctx.err.print("internal error (a bug in cityguard); details follow", markup=False)
        traceback.print_exc()
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
