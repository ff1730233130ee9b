"""``sqlaopt indexes sql|check|create|migration``: the spec from the command line.

Exit status: 0 on success; 1 when ``check`` finds an entry missing, invalid or different, or
``create`` fails to build one; 2 for bad input (unknown model, a spec that does not fit,
an unreachable database).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData, create_engine
from sqlalchemy.exc import SQLAlchemyError

from ._alembic import alembic_migration
from ._apply import _reference_metadata, apply, metadata_of
from ._build import MARK, private_copy
from ._check import check
from ._create import create
from ._dialects import DIALECTS
from ._errors import IndexBuildError, IndexSpecError
from ._render import ddl
from ._report import REPORT

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add the ``indexes`` command and its subcommands to an argparse subparsers object."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "indexes", help="the performance report's indexes: SQL, check, create, migration"
    )
    sub = parser.add_subparsers(dest="indexes_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--models",
        metavar="MODULE:BASE",
        help="your declarative base or MetaData (default: sqlaopt's reference schema)",
    )
    common.add_argument(
        "--rename",
        action="append",
        default=[],
        type=_rename_pair,
        metavar="A.B=C",
        help="map a report name to yours: --rename clients.last_visit=last_visit_date, "
        "--rename ai_insight_cache=ai_insights_cache (repeatable)",
    )
    common.add_argument(
        "--on-missing",
        choices=("error", "warn", "skip"),
        default="error",
        help="what to do with entries whose tables or columns your models lack",
    )
    dialect = argparse.ArgumentParser(add_help=False)
    dialect.add_argument("--dialect", choices=DIALECTS, default="postgresql")
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("--url", required=True, help="SQLAlchemy database URL")

    _add(sub, "sql", [common, dialect], "print the DDL, one idempotent statement each", _sql)
    _add(sub, "check", [common, url], "compare with a live database (exit 1 on problems)", _check)
    _add(
        sub, "create", [common, url], "build what is missing (CONCURRENTLY on PostgreSQL)", _create
    )
    _add(sub, "migration", [common, dialect], "print an Alembic revision body", _migration)


def _add(
    sub: Any,
    name: str,
    parents: list[argparse.ArgumentParser],
    help_: str,
    run: Callable[[argparse.Namespace], int],
) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(name, parents=parents, help=help_)
    parser.set_defaults(run=_guarded(run))


def _rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old.strip(), new.strip()


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into a one-line message and exit status 2."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                status = run(args)
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
            return status
        except (IndexSpecError, ImportError, AttributeError, SQLAlchemyError) as error:
            print(f"sqlaopt indexes: {type(error).__name__}: {error}", file=sys.stderr)
            return 2

    return guarded


def _load_models(spec: str) -> MetaData:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise IndexSpecError(f"--models takes MODULE:BASE (e.g. app.models:Base), not {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return metadata_of(target)


def _target(args: argparse.Namespace) -> MetaData:
    """A private copy of the models with the spec fitted as the options say."""
    source = _load_models(args.models) if args.models else _reference_metadata()
    copy = private_copy(source)
    options_given = bool(args.rename) or args.on_missing != "error"
    if MARK in source.info and not options_given:
        copy.info[MARK] = dict(source.info[MARK])  # the models applied the spec themselves
    else:
        apply(copy, REPORT, on_missing=args.on_missing, rename=dict(args.rename))
    return copy


def _sql(args: argparse.Namespace) -> int:
    target = _target(args)
    records = target.info[MARK]
    for name in REPORT.names:
        status = records[name].dialects[args.dialect] if name in records else None
        if status is not None and status.status != "applied":
            print(f"-- {name}: {status}")
    if args.dialect == "postgresql":
        print("-- Run each statement on its own, outside a transaction block (CONCURRENTLY).")
    for statement in ddl(REPORT, args.dialect, target):
        print(f"{statement};")
    return 0


def _check(args: argparse.Namespace) -> int:
    target = _target(args)
    engine = create_engine(args.url)
    try:
        result = check(engine, REPORT, target)
    finally:
        engine.dispose()
    print(result.table())
    return 0 if result.ok else 1


def _create(args: argparse.Namespace) -> int:
    target = _target(args)
    engine = create_engine(args.url)
    try:
        result = create(engine, REPORT, target)
    except IndexBuildError as error:
        print(error.result, file=sys.stdout)
        print(f"sqlaopt indexes: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(result.table())
    return 0


def _migration(args: argparse.Namespace) -> int:
    print(alembic_migration(REPORT, _target(args), dialect=args.dialect), end="")
    return 0
