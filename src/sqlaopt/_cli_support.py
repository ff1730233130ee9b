"""What every ``sqlaopt`` subcommand shares: exit statuses, one-line errors, importing the
user's objects, and database connections that give up within a deadline.

Exit status (every command, every failure; messages are one line on stderr, no traceback):

====  ===================================================================================
0     success
1     the database does not match what was asked (``indexes check``/``create``)
2     bad input: arguments, an object named ``MODULE:ATTRIBUTE`` that cannot be imported or
      is of the wrong kind, a URL whose dialect or driver is not installed, a server that
      cannot give what was asked (the message says how to enable it)
3     the database could not be used: no connection within ``--connect-timeout`` (refused,
      unknown host, authentication, a server that never answers), a lock not acquired within
      ``--lock-timeout``, or a database error
====  ===================================================================================
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ._connect import DatabaseUnreachable, connect_within, timed_engine
from ._errors import SqlaoptError
from ._names import did_you_mean

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "EXIT_BAD_INPUT",
    "EXIT_DATABASE",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "BadInput",
    "Outcome",
    "add_database_options",
    "guarded",
    "import_object",
    "open_engine",
]

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_DATABASE = 0, 1, 2, 3
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LOCK_TIMEOUT = 60.0
Outcome = tuple[str, int]  # the one-line message and the exit status


class BadInput(SqlaoptError):
    """An option the command cannot use (exit 2)."""


def guarded(
    prefix: str, run: Callable[[argparse.Namespace], int],
    specific: Callable[[Exception], Outcome | None] = lambda error: None,
) -> Callable[[argparse.Namespace], int]:
    """``run`` with every expected failure turned into one line on stderr and its status;
    ``specific`` maps a command's own errors first."""

    def command(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except Exception as error:
            outcome = specific(error) or _outcome(error)
            if outcome is None:
                raise
            print(f"{prefix}: {outcome[0]}", file=sys.stderr)
            return outcome[1]

    return command


def _outcome(error: Exception) -> Outcome | None:
    if isinstance(error, DatabaseUnreachable):
        return str(error), EXIT_DATABASE
    if isinstance(error, ArgumentError):  # a malformed URL, an unknown dialect
        return f"--url: {error}", EXIT_BAD_INPUT
    if isinstance(error, ImportError):  # a dialect whose driver is not installed
        return f"--url needs a driver that is not installed: {error}", EXIT_BAD_INPUT
    if isinstance(error, SQLAlchemyError):
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()
        return f"database error: {cause[0] if cause else error}", EXIT_DATABASE
    if isinstance(error, SqlaoptError):
        first = str(error).strip().splitlines()
        return (first[0] if first else type(error).__name__), EXIT_BAD_INPUT
    return None


def import_object(option: str, value: str, form: str, example: str) -> object:
    """The object ``MODULE:ATTRIBUTE`` names, imported as ``python -m`` would from here."""
    module_name, _, attribute = value.partition(":")
    if not module_name or not attribute:
        raise BadInput(f"{option} takes {form} (e.g. {example}), not {value!r}")
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)  # the console script's sys.path[0] is its bin directory
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # whatever the module raises while it is imported
        first = str(error).strip().splitlines()
        raise BadInput(
            f"{option} {value}: cannot import {module_name} from {here}: "
            f"{type(error).__name__}{': ' + first[0] if first else ''}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            raise BadInput(
                f"{option} {value}: {getattr(target, '__name__', module_name)} has no attribute "
                f"{part!r}{did_you_mean(part, names)}"
            )
        target = getattr(target, part)
    return target


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_database_options(parser: argparse.ArgumentParser, *, url_required: bool = True,
                         url_help: str = "SQLAlchemy database URL",
                         lock_help: str | None = None) -> None:
    """``--url``, ``--connect-timeout`` and (with ``lock_help``) ``--lock-timeout``."""
    parser.add_argument("--url", required=url_required, default=None, help=url_help)
    parser.add_argument(
        "--connect-timeout", type=_seconds, default=DEFAULT_CONNECT_TIMEOUT, metavar="SECONDS",
        help=f"give up connecting after this long (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    if lock_help is not None:
        parser.add_argument(
            "--lock-timeout", type=_seconds, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
            help=f"{lock_help} (default {DEFAULT_LOCK_TIMEOUT:g})",
        )


@contextmanager
def open_engine(args: argparse.Namespace) -> Iterator[Engine]:
    """An engine for ``args.url`` whose first connection is made within the deadline."""
    lock_timeout = getattr(args, "lock_timeout", None)
    engine = timed_engine(args.url, connect_timeout=args.connect_timeout,
                          lock_timeout=lock_timeout)
    try:
        connect_within(engine, args.connect_timeout)
        yield engine
    finally:
        engine.dispose()
