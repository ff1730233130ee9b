"""``sqlaopt indexes sql|check|create|migration``: any spec, any models, from the command line.

A thin adapter: it imports the spec (``--spec``, REPORT by default) and the models
(``--models``), fits one to the other as :func:`apply` does (``--rename``, ``--on-missing``),
and calls :func:`ddl`, :func:`check`, :func:`create` or :func:`alembic_migration`.

Exit status: the table in ``sqlaopt._cli_support`` (0 ok; 1 ``check`` found an entry
missing, INVALID or different, or ``create`` could not build one or left one INVALID; 2 bad
input, including a spec that does not fit the models; 3 the database could not be used).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import MetaData

from .._cli_support import (
    EXIT_BAD_INPUT,
    EXIT_DATABASE,
    EXIT_MISMATCH,
    EXIT_OK,
    BadInput,
    Outcome,
    add_database_options,
    guarded,
    import_object,
    open_engine,
)
from ._alembic import alembic_migration
from ._apply import EntryResult, _reference_metadata, apply, format_table, metadata_of
from ._build import MARK, private_copy
from ._check import check
from ._create import create
from ._dialects import DIALECTS
from ._errors import IndexBuildError, IndexLockError, IndexSpecError, IndexSpecWarning
from ._render import ddl
from ._report import REPORT
from ._spec import Spec, as_spec

__all__ = ["EXIT_BAD_INPUT", "EXIT_DATABASE", "EXIT_MISMATCH", "EXIT_OK", "register"]


def register(commands: Any) -> None:
    """Add the ``indexes`` command and its subcommands to an argparse subparsers object."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "indexes",
        help="an index spec (the performance report's by default): SQL, check, create, migration",
        description="Exit status: 0 ok; 1 the database does not match the spec (check) or an "
        "entry could not be built (create); 2 bad input; 3 the database could not be used "
        "(connection, lock timeout).",
    )
    sub = parser.add_subparsers(dest="indexes_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--spec",
        metavar="MODULE:ATTRIBUTE",
        help="your Spec (or list of IndexSpec/ExclusionSpec), imported from the current "
        "directory like python -m (default: sqlaopt.indexes:REPORT)",
    )
    common.add_argument(
        "--models",
        metavar="MODULE:BASE",
        help="your declarative base or MetaData, imported from the current directory like "
        "python -m (default: sqlaopt's reference schema)",
    )
    common.add_argument(
        "--rename",
        action="append",
        default=[],
        type=_rename_pair,
        metavar="OLD=NEW",
        help="map a spec name to yours, as apply(rename=...): --rename "
        "clients.last_visit=last_visit_date, --rename ai_insight_cache=ai_insights_cache "
        "(repeatable)",
    )
    common.add_argument(
        "--on-missing",
        choices=("error", "warn", "skip"),
        default="error",
        help="entries whose tables or columns your models lack: error (exit 2), warn (one "
        "line each on stderr, build what fits) or skip (silently build what fits)",
    )
    dialect = argparse.ArgumentParser(add_help=False)
    dialect.add_argument("--dialect", choices=DIALECTS, default="postgresql")
    database = argparse.ArgumentParser(add_help=False)
    add_database_options(
        database,
        lock_help="create: give up waiting for another run's build lock, or for the table lock "
        "an exclusion constraint needs, after this long",
    )

    _add(sub, "sql", [common, dialect], "print the DDL, one idempotent statement each", _sql)
    _add(sub, "check", [common, database], "compare with a live database (exit 1 on problems)",
         _check)
    _add(sub, "create", [common, database],
         "build what is missing (CONCURRENTLY on PostgreSQL; safe from several processes)",
         _create)
    _add(sub, "migration", [common, dialect], "print an Alembic revision body", _migration)


def _add(
    sub: Any,
    name: str,
    parents: list[argparse.ArgumentParser],
    help_: str,
    run: Callable[[argparse.Namespace], int],
) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(name, parents=parents, help=help_)
    parser.set_defaults(run=guarded("sqlaopt indexes", run, _index_errors))


def _rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old.strip(), new.strip()


def _index_errors(error: Exception) -> Outcome | None:
    if isinstance(error, IndexBuildError):
        failed = [a.name for a in error.result if a.action == "failed"]
        return f"could not build {', '.join(failed)} (see the table)", EXIT_MISMATCH
    if isinstance(error, IndexSpecError):
        return error.cli_message, EXIT_BAD_INPUT
    if isinstance(error, IndexLockError):
        return str(error), EXIT_DATABASE
    return None


# --- what the options name ----------------------------------------------------------------


def _spec(args: argparse.Namespace) -> Spec:
    if not args.spec:
        return REPORT
    found = import_object("--spec", args.spec, "MODULE:ATTRIBUTE", "app.indexes:SPEC")
    if isinstance(found, (str, bytes)) or not isinstance(found, (Spec, list, tuple)):
        raise BadInput(
            f"--spec {args.spec} is a {type(found).__name__}, not a Spec or a list of "
            "IndexSpec/ExclusionSpec"
        )
    return as_spec(found)


def _models(args: argparse.Namespace) -> MetaData:
    if not args.models:
        return _reference_metadata()
    found = import_object("--models", args.models, "MODULE:BASE", "app.models:Base")
    try:
        return metadata_of(found)
    except IndexSpecError:
        raise BadInput(
            f"--models {args.models} is a {type(found).__name__}, not a declarative base or a "
            "MetaData"
        ) from None


class _Fitted:
    """The spec fitted to a private copy of the models, and what did not fit."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.spec = _spec(args)
        source = _models(args)
        self.target = private_copy(source)
        applied = source.info.get(MARK, {})
        if all(name in applied for name in self.spec.names) and not _fitting_options(args):
            self.target.info[MARK] = dict(applied)  # the models applied the spec themselves
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", IndexSpecWarning)
                apply(self.target, self.spec, on_missing=args.on_missing,
                      rename=dict(args.rename))
            for warning in caught:  # one line per entry that did not fit (warn mode only)
                print(f"warning: {warning.message}", file=sys.stderr)
        records: dict[str, EntryResult] = self.target.info[MARK]
        #: Entries left out because the models lack their tables or columns: reported once,
        #: by the warning above (or silently, with --on-missing skip), never again below.
        self.left_out = {n for n in self.spec.names if records[n].status == "skipped"}
        self.records = records


def _fitting_options(args: argparse.Namespace) -> bool:
    return bool(args.rename) or args.on_missing != "error"


def _detail(fitted: _Fitted, name: str, detail: str) -> str:
    return "left out: does not fit the models" if name in fitted.left_out else detail


# --- the subcommands ----------------------------------------------------------------------


def _sql(args: argparse.Namespace) -> int:
    fitted = _Fitted(args)
    for name in fitted.spec.names:
        status = fitted.records[name].dialects[args.dialect]
        if status.status != "applied" and name not in fitted.left_out:
            print(f"-- {name}: {status}")
    if args.dialect == "postgresql":
        print("-- Run each statement on its own, outside a transaction block (CONCURRENTLY).")
    for statement in ddl(fitted.spec, args.dialect, fitted.target):
        print(f"{statement};")
    return EXIT_OK


def _table(rows: Sequence[tuple[str, ...]], fitted: _Fitted) -> str:
    """The result table, with entries left out of the models marked, not explained again."""
    fixed = [rows[0], *((*r[:-1], _detail(fitted, r[0], r[-1])) for r in rows[1:])]
    return format_table(fixed)


def _check(args: argparse.Namespace) -> int:
    fitted = _Fitted(args)
    with open_engine(args) as engine:
        result = check(engine, fitted.spec, fitted.target)
    rows = [("entry", "table", "status", "detail")]
    rows += [(e.name, e.table, e.status, e.detail) for e in result.entries]
    text = _table(rows, fitted)
    if result.redundant:
        text += "\n\nredundant indexes (covered by a spec entry):\n"
        text += "\n".join(f"  {r}" for r in result.redundant)
    print(text)
    return EXIT_OK if result.ok else EXIT_MISMATCH


def _create(args: argparse.Namespace) -> int:
    fitted = _Fitted(args)
    with open_engine(args) as engine:
        try:
            result = create(engine, fitted.spec, fitted.target, lock_timeout=args.lock_timeout)
        except IndexBuildError as error:
            _print_actions(error.result, fitted)
            raise
    _print_actions(result, fitted)
    return EXIT_OK


def _print_actions(result: Any, fitted: _Fitted) -> None:
    rows = [("entry", "action", "detail")]
    rows += [(a.name, a.action, a.detail) for a in result]
    print(_table(rows, fitted))


def _migration(args: argparse.Namespace) -> int:
    fitted = _Fitted(args)
    body = alembic_migration(fitted.spec, fitted.target, dialect=args.dialect)
    # The revision's header notes every entry not built as declared; those left out of the
    # models were reported already (or silenced with --on-missing skip).
    left_out = tuple(f"#   {name}: " for name in fitted.left_out)
    print("".join(line for line in body.splitlines(keepends=True)
                  if not line.startswith(left_out)), end="")
    return EXIT_OK
