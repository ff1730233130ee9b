"""``sqlaopt indexes sql|check|create|migration``: any spec, any models, from the command line.

A thin adapter: it imports the spec (``--spec``, REPORT by default) and the models
(``--models``), fits one to the other as :func:`apply` does (``--rename``, ``--on-missing``),
and calls :func:`ddl`, :func:`check`, :func:`create` or :func:`alembic_migration`.

Exit status (every failure follows it; messages are one line on stderr, no traceback):

====  ===================================================================================
0     success (``check``: every entry present or skipped)
1     the database does not match: ``check`` found an entry missing, INVALID or different;
      ``create`` could not build an entry, or one is INVALID afterwards
2     bad input: arguments, a ``--spec``/``--models`` that cannot be imported or is not a
      spec/base, an unknown ``--rename`` key, a spec that does not fit the models, a URL
      whose dialect or driver is not installed
3     the database could not be used: no connection within ``--connect-timeout`` (refused,
      unknown host, authentication, a server that never answers), the build lock not
      acquired within ``--lock-timeout``, or a database error outside the entries
====  ===================================================================================
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .._connect import DatabaseUnreachable, connect_within, timed_engine
from .._errors import SqlaoptError
from .._names import did_you_mean
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

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_DATABASE = 0, 1, 2, 3
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LOCK_TIMEOUT = 60.0


class _BadInput(SqlaoptError):
    """An option the command cannot use (exit 2)."""


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
    database.add_argument("--url", required=True, help="SQLAlchemy database URL")
    database.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up connecting after this long (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    database.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        help="create: give up waiting for another run's build lock, or for the table lock an "
        f"exclusion constraint needs, after this long (default {DEFAULT_LOCK_TIMEOUT:g})",
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
    parser.set_defaults(run=_guarded(run))


def _rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old.strip(), new.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every expected failure as one line on stderr and its exit status (module docstring)."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except IndexBuildError as error:
            failed = [a.name for a in error.result if a.action == "failed"]
            return _fail(f"could not build {', '.join(failed)} (see the table)", EXIT_MISMATCH)
        except IndexSpecError as error:
            return _fail(error.cli_message, EXIT_BAD_INPUT)
        except _BadInput as error:
            return _fail(str(error), EXIT_BAD_INPUT)
        except (DatabaseUnreachable, IndexLockError) as error:
            return _fail(str(error), EXIT_DATABASE)
        except ArgumentError as error:  # a malformed URL, an unknown dialect
            return _fail(f"--url: {error}", EXIT_BAD_INPUT)
        except ImportError as error:  # a dialect whose driver is not installed
            return _fail(f"--url needs a driver that is not installed: {error}", EXIT_BAD_INPUT)
        except SQLAlchemyError as error:
            cause = str(getattr(error, "orig", None) or error).strip().splitlines()
            return _fail(f"database error: {cause[0] if cause else error}", EXIT_DATABASE)

    return guarded


def _fail(message: str, status: int) -> int:
    print(f"sqlaopt indexes: {message}", file=sys.stderr)
    return status


# --- what the options name ----------------------------------------------------------------


def _import(option: str, value: str, form: str, example: str) -> object:
    """The object ``MODULE:ATTRIBUTE`` names, imported as ``python -m`` would from here."""
    module_name, _, attribute = value.partition(":")
    if not module_name or not attribute:
        raise _BadInput(f"{option} takes {form} (e.g. {example}), not {value!r}")
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)  # the console script's sys.path[0] is its bin directory
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # whatever the module raises while it is imported
        first = str(error).strip().splitlines()
        raise _BadInput(
            f"{option} {value}: cannot import {module_name} from {here}: "
            f"{type(error).__name__}{': ' + first[0] if first else ''}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            raise _BadInput(
                f"{option} {value}: {getattr(target, '__name__', module_name)} has no attribute "
                f"{part!r}{did_you_mean(part, names)}"
            )
        target = getattr(target, part)
    return target


def _spec(args: argparse.Namespace) -> Spec:
    if not args.spec:
        return REPORT
    found = _import("--spec", args.spec, "MODULE:ATTRIBUTE", "app.indexes:SPEC")
    if isinstance(found, (str, bytes)) or not isinstance(found, (Spec, list, tuple)):
        raise _BadInput(
            f"--spec {args.spec} is a {type(found).__name__}, not a Spec or a list of "
            "IndexSpec/ExclusionSpec"
        )
    return as_spec(found)


def _models(args: argparse.Namespace) -> MetaData:
    if not args.models:
        return _reference_metadata()
    found = _import("--models", args.models, "MODULE:BASE", "app.models:Base")
    try:
        return metadata_of(found)
    except IndexSpecError:
        raise _BadInput(
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


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Engine]:
    engine = timed_engine(
        args.url, connect_timeout=args.connect_timeout, lock_timeout=args.lock_timeout
    )
    try:
        connect_within(engine, args.connect_timeout)
        yield engine
    finally:
        engine.dispose()


def _table(rows: Sequence[tuple[str, ...]], fitted: _Fitted) -> str:
    """The result table, with entries left out of the models marked, not explained again."""
    fixed = [rows[0], *((*r[:-1], _detail(fitted, r[0], r[-1])) for r in rows[1:])]
    return format_table(fixed)


def _check(args: argparse.Namespace) -> int:
    fitted = _Fitted(args)
    with _engine(args) as engine:
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
    with _engine(args) as engine:
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
