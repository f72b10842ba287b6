"""The command line: `cityguard.cli.main` builds the command table and runs one command."""

from cityguard.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
