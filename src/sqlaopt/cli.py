"""The ``sqlaopt`` command line: ``sqlaopt demo``, ``sqlaopt indexes ...``, ``sqlaopt db ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlaopt", description="Keep SQLAlchemy applications fast."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from . import _demo

    _demo.register(commands)
    from .indexes import _cli as indexes_cli

    indexes_cli.register(commands)
    from .watch import _cli as watch_cli

    watch_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
