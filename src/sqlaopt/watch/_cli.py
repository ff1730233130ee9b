"""``sqlaopt db report|advise``: the live database from the command line.

Exit status: 0 on success; 2 for bad input, an unreachable database, or a server that cannot
give what was asked (the message says how to enable it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine
from sqlalchemy.exc import SQLAlchemyError

from .._errors import SqlaoptError
from ._advice import DEFAULT_FACTOR, Advice
from ._advisor import advise
from ._report import report
from ._workload import Workload

__all__ = ["register"]

_OUTPUTS = ("table", "python", "sql", "migration", "json")


def register(commands: Any) -> None:
    """Add the ``db`` command and its subcommands to an argparse subparsers object."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "db", help="watch a live database: slow statements, index health, advice, pool")
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("--url", required=True, help="SQLAlchemy database URL")

    run = sub.add_parser("report", parents=[url], help="slow statements, index health, "
                         "index advice and the pool check")
    run.add_argument("--json", action="store_true", help="print JSON instead of text")
    run.add_argument("--processes", type=int, default=1, help="application processes")
    run.add_argument("--threads", type=int, default=4, help="threads (or tasks) per process")
    run.add_argument("--limit", type=int, default=10, help="slow statements to show")
    run.add_argument("--no-advice", action="store_true", help="skip the index advisor")
    run.add_argument("--window-days", type=float, default=7.0,
                     help="call an index unused only when the statistics cover this long")
    run.set_defaults(run=_guarded(_report))

    adv = sub.add_parser("advise", parents=[url], help="indexes for a workload, proven with "
                         "HypoPG (default workload: pg_stat_statements)")
    adv.add_argument("--workload", metavar="FILE", help="a workload JSON file "
                     "(sqlaopt.watch.Workload.to_json)")
    adv.add_argument("--limit", type=int, default=50,
                     help="statements taken from pg_stat_statements")
    adv.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                     help="how many times a candidate must cut a statement's plan cost")
    adv.add_argument("--output", choices=_OUTPUTS, default="table")
    adv.add_argument("--models", metavar="MODULE:BASE",
                     help="your declarative base, for --output migration (default: the "
                     "tables as the database has them)")
    adv.set_defaults(run=_guarded(_advise))


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (SqlaoptError, SQLAlchemyError, ImportError, OSError) as error:
            message = str(error).strip().splitlines()[0]
            print(f"sqlaopt db: {type(error).__name__}: {message}", file=sys.stderr)
            return 2

    return guarded


def _engine(args: argparse.Namespace) -> Engine:
    return create_engine(args.url)


def _report(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        result = report(engine, processes=args.processes, threads=args.threads,
                        limit=args.limit, include_advice=not args.no_advice,
                        min_window=dt.timedelta(days=args.window_days))
    finally:
        engine.dispose()
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.text(), end="")
    if args.json:
        print()
    return 0


def _advise(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        workload = (Workload.from_json(args.workload) if args.workload
                    else Workload.from_pg_stat_statements(engine, limit=args.limit))
        advice = advise(engine, workload, factor=args.factor)
        target = _target(args, engine, advice) if args.output == "migration" else None
    finally:
        engine.dispose()
    print(_render(advice, args.output, target), end="")
    return 0


def _target(args: argparse.Namespace, engine: Engine, advice: Advice) -> object:
    if args.models:
        from ..indexes._cli import _load_models

        return _load_models(args.models)
    metadata = MetaData()
    metadata.reflect(engine, only=sorted({r.table for r in advice.recommendations}))
    return metadata


def _render(advice: Advice, output: str, target: object) -> str:
    if output == "json":
        return json.dumps(advice.to_dict(), indent=2) + "\n"
    if output == "python":
        return advice.python()
    if output == "sql":
        return advice.sql() + "\n"
    if output == "migration":
        return advice.migration(target)
    return advice.table() + "\n"
