"""``date_bucket``: the same calendar bucket (day, ISO week, month) on PostgreSQL, SQLite, MySQL.

The bucket is a ``DATE`` everywhere: the first day of the day/week/month the value falls in.
Each dialect gets its own rendering through :func:`sqlalchemy.ext.compiler.compiles`, so the
expression stays a plain SQL function call the database can evaluate (and, on PostgreSQL,
match against an expression index).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Date, SQLColumnExpression
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from .._errors import SqlaoptError
from .._names import did_you_mean

__all__ = ["UNITS", "DateBucketUnitError", "bucket_start", "date_bucket"]

UNITS = ("day", "week", "month")
"""The units :func:`date_bucket` accepts."""


class DateBucketUnitError(SqlaoptError, ValueError):
    """:func:`date_bucket` was given a unit other than ``day``, ``week`` or ``month``."""

    def __init__(self, unit: object) -> None:
        self.unit = unit
        accepted = ", ".join(repr(u) for u in UNITS)
        hint = did_you_mean(unit, UNITS) if isinstance(unit, str) else ""
        super().__init__(f"unknown date_bucket unit {unit!r}; accepted: {accepted}{hint}")


def date_bucket(
    unit: str, col: SQLColumnExpression[dt.datetime] | SQLColumnExpression[dt.date]
) -> ColumnElement[dt.date]:
    """The first day of the ``unit`` that ``col`` falls in, as a SQL ``DATE``.

    ``unit`` is ``"day"``, ``"week"`` (ISO weeks: the bucket is the Monday) or ``"month"``
    (the bucket is the 1st); anything else raises :class:`DateBucketUnitError`, a
    :class:`ValueError`. The result is a ``datetime.date`` on PostgreSQL, SQLite and
    MySQL/MariaDB alike, so reports grouped on it compare equal across databases.

    Renderings: PostgreSQL ``CAST(date_trunc('week', col) AS DATE)`` (``CAST(col AS DATE)`` for
    days); SQLite ``date(date(col), 'weekday 0', '-6 days')`` / ``date(col, 'start of month')``;
    MySQL/MariaDB ``DATE_SUB(DATE(col), INTERVAL WEEKDAY(col) DAY)`` and similar.

    Time zones: a ``DateTime(timezone=True)`` column is bucketed by its UTC date. PostgreSQL
    renders ``col AT TIME ZONE 'UTC'`` (the form an expression index on a ``timestamptz`` must
    use, and independent of the session's ``TimeZone``); SQLite and MySQL store no offset
    (SQLAlchemy writes the wall-clock value), so store UTC there. Naive ``DateTime`` columns are
    bucketed as stored.
    """
    if unit not in UNITS:
        raise DateBucketUnitError(unit)
    return _DateBucket(unit, col)


def bucket_start(unit: str, day: dt.date) -> dt.date:
    """Python twin of :func:`date_bucket` for a date (tests and Python-side grouping)."""
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    raise DateBucketUnitError(unit)


class _DateBucket(FunctionElement[dt.date]):
    """The SQL element behind :func:`date_bucket`; ``unit`` is part of the cache key."""

    name = "date_bucket"
    type = Date()
    inherit_cache = True
    # SQLAlchemy declares this as an instance attribute; the unit must be in the cache key so
    # date_bucket("day", c) and date_bucket("week", c) never share a compiled statement.
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012
        *FunctionElement._traverse_internals,
        ("unit", InternalTraversal.dp_string),
    ]

    def __init__(self, unit: str, col: Any) -> None:
        self.unit = unit
        super().__init__(col)

    @property
    def argument(self) -> ColumnElement[Any]:
        (only,) = self.clauses.clauses
        return only


def _is_timestamptz(element: ColumnElement[Any]) -> bool:
    return bool(getattr(element.type, "timezone", False))


def _is_date(element: ColumnElement[Any]) -> bool:
    return element.type._type_affinity is Date


@compiles(_DateBucket, "postgresql")
def _postgresql(element: _DateBucket, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.argument, **kw)
    if _is_timestamptz(element.argument):
        # AT TIME ZONE 'UTC' is IMMUTABLE (date_trunc on timestamptz is only STABLE), so the
        # same text works in an expression index; it also ignores the session TimeZone.
        value = f"({value} AT TIME ZONE 'UTC')"
    elif _is_date(element.argument):
        # date_trunc(date) would go through timestamptz, i.e. through the session time zone.
        value = f"CAST({value} AS TIMESTAMP)"
    if element.unit == "day":
        return f"CAST({value} AS DATE)"
    return f"CAST(date_trunc('{element.unit}', {value}) AS DATE)"


@compiles(_DateBucket, "sqlite")
def _sqlite(element: _DateBucket, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.argument, **kw)
    if element.unit == "day":
        return f"date({value})"
    if element.unit == "month":
        return f"date({value}, 'start of month')"
    # 'weekday 0' moves forward to the next Sunday (or stays on one); 6 days back is the Monday.
    # It works on the julian day rounded to the millisecond, which turns 23:59:59.9995 into
    # the next day; the inner date() drops the time first.
    return f"date(date({value}), 'weekday 0', '-6 days')"


_MYSQL_DAYS_BACK = {"week": "WEEKDAY({})", "month": "(DAYOFMONTH({}) - 1)"}


@compiles(_DateBucket, "mysql")
@compiles(_DateBucket, "mariadb")
def _mysql(element: _DateBucket, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.argument, **kw)
    if element.unit == "day":
        return f"DATE({value})"
    # WEEKDAY() counts from Monday = 0; DATE_SUB of a DATE by whole days stays a DATE.
    days_back = _MYSQL_DAYS_BACK[element.unit].format(value)
    return f"DATE_SUB(DATE({value}), INTERVAL {days_back} DAY)"


@compiles(_DateBucket)
def _unsupported(element: _DateBucket, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(
        "date_bucket() has renderings for postgresql, sqlite, mysql and mariadb, "
        f"not for the {compiler.dialect.name!r} dialect"
    )
