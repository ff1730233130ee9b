"""``sqlaopt demo``: the whole story on an embedded SQLite database."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo", help="run the N+1 / preset / index story on a sample database"
    )
    parser.add_argument("--url", default=None, help="database URL (default: temporary SQLite)")
    parser.add_argument("--appointments", type=int, default=20_000, help="data size")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print("demo: not written yet")
    return 0
