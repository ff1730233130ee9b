"""SQL expressions that compile, per dialect, to exactly what the index spec indexes.

An expression index is used only when the query contains the same expression, so the spec
builds its index key parts from these elements and queries should use them too:
``select(...).where(indexed_date(Payment.created_at) == day)`` renders as
``(created_at AT TIME ZONE 'UTC')::date`` on PostgreSQL when ``created_at`` is a ``timestamptz``
column (``date(created_at)`` is not IMMUTABLE there and cannot be indexed) and as
``date(created_at)`` on SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, DateTime, literal, literal_column
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

__all__ = [
    "DATE_TRUNC_UNITS",
    "indexed_date",
    "indexed_date_trunc",
    "indexed_tsrange",
    "is_timezone_aware",
]

#: The ``date_trunc`` units the spec accepts: the ones every supported dialect can express.
DATE_TRUNC_UNITS = ("minute", "hour", "day", "week", "month", "year")

# SQLite has no date_trunc. strftime() with modifiers is deterministic (SQLite accepts it in
# index expressions) and gives the 'YYYY-MM-DD HH:MM:SS.ffffff' text SQLAlchemy stores and
# binds datetimes as, so comparing with a Python datetime works.
_SQLITE_TRUNC = {
    "minute": "strftime('%Y-%m-%d %H:%M:00.000000', {})",
    "hour": "strftime('%Y-%m-%d %H:00:00.000000', {})",
    "day": "strftime('%Y-%m-%d 00:00:00.000000', {})",
    # 6 days back, then forward to the next Monday: the Monday on or before the date, as
    # PostgreSQL's ISO weeks.
    "week": "strftime('%Y-%m-%d 00:00:00.000000', {}, '-6 days', 'weekday 1')",
    "month": "strftime('%Y-%m-01 00:00:00.000000', {})",
    "year": "strftime('%Y-01-01 00:00:00.000000', {})",
}

# MySQL/MariaDB have no date_trunc either. These forms serve queries only: MariaDB rejects
# expression key parts, so the spec never indexes them there.
_MYSQL_TRUNC_FORMATS = {
    "minute": "%Y-%m-%d %H:%i:00",
    "hour": "%Y-%m-%d %H:00:00",
    "day": "%Y-%m-%d 00:00:00",
    "month": "%Y-%m-01 00:00:00",
    "year": "%Y-01-01 00:00:00",
}


def is_timezone_aware(type_: TypeEngine[Any]) -> bool:
    """True for ``DateTime(timezone=True)`` (``timestamptz`` on PostgreSQL)."""
    return isinstance(type_, DateTime) and bool(type_.timezone)


class indexed_date(FunctionElement[dt.date]):
    """``date(column)`` in the form the index spec indexes (use it in queries to hit the index).

    PostgreSQL: ``((column AT TIME ZONE 'UTC')::date)`` for a timezone-aware column, else
    ``date(column)``. SQLite and MySQL: ``date(column)``.
    """

    type = Date()
    name = "indexed_date"
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)


class indexed_date_trunc(FunctionElement[dt.datetime]):
    """``date_trunc(unit, column)`` in the form the index spec indexes.

    PostgreSQL: ``date_trunc('week', column AT TIME ZONE 'UTC')`` for a timezone-aware column,
    else ``date_trunc('week', column)``. SQLite: an equivalent ``datetime()``/``strftime()``
    form. MySQL/MariaDB: an equivalent ``DATE_FORMAT``/``WEEKDAY`` form (queries only).
    ``unit`` is one of :data:`DATE_TRUNC_UNITS`; weeks start on Monday everywhere.
    """

    type = DateTime()
    name = "indexed_date_trunc"
    inherit_cache = True

    def __init__(self, unit: str, column: Any) -> None:
        if unit not in DATE_TRUNC_UNITS:
            raise ValueError(f"unknown date_trunc unit {unit!r}; use one of {DATE_TRUNC_UNITS}")
        # The unit travels as a literal clause so that it is part of the statement cache key.
        super().__init__(literal_column(f"'{unit}'"), column)


class indexed_tsrange(FunctionElement[Any]):
    """``tsrange(start, end, bounds)`` (``tstzrange`` for timezone-aware columns); PostgreSQL only.

    ``bounds`` defaults to ``'[)'`` so that back-to-back slots do not overlap.
    """

    name = "indexed_tsrange"
    inherit_cache = True

    def __init__(self, start: Any, end: Any, bounds: str = "[)") -> None:
        if bounds not in ("[)", "[]", "()", "(]"):
            raise ValueError(f"range bounds must be one of '[)', '[]', '()', '(]', not {bounds!r}")
        super().__init__(start, end, literal_column(f"'{bounds}'"))


def _parts(element: FunctionElement[Any]) -> list[ColumnElement[Any]]:
    return list(element.clauses)


def _unit(clause: ColumnElement[Any]) -> str:
    return str(getattr(clause, "name", "")).strip("'")


@compiles(indexed_date)
def _date_default(element: indexed_date, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _parts(element)
    return f"date({compiler.process(column, **kw)})"


@compiles(indexed_date, "postgresql")
def _date_postgresql(element: indexed_date, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _parts(element)
    rendered = compiler.process(column, **kw)
    if is_timezone_aware(column.type):
        # The outer parentheses make the cast a valid index key part on its own.
        return f"(({rendered} AT TIME ZONE 'UTC')::date)"
    return f"date({rendered})"


@compiles(indexed_date_trunc)
def _trunc_default(element: indexed_date_trunc, compiler: SQLCompiler, **kw: Any) -> str:
    # Other dialects (and str(statement)) get the portable spelling.
    unit, column = _parts(element)
    return f"date_trunc('{_unit(unit)}', {compiler.process(column, **kw)})"


@compiles(indexed_date_trunc, "postgresql")
def _trunc_postgresql(element: indexed_date_trunc, compiler: SQLCompiler, **kw: Any) -> str:
    unit, column = _parts(element)
    rendered = compiler.process(column, **kw)
    if is_timezone_aware(column.type):
        # Parenthesised as PostgreSQL itself deparses it, so Alembic's comparison of the
        # reflected index with the model sees no difference.
        rendered = f"({rendered} AT TIME ZONE 'UTC')"
    return f"date_trunc('{_unit(unit)}', {rendered})"


@compiles(indexed_date_trunc, "sqlite")
def _trunc_sqlite(element: indexed_date_trunc, compiler: SQLCompiler, **kw: Any) -> str:
    unit, column = _parts(element)
    return _SQLITE_TRUNC[_unit(unit)].format(compiler.process(column, **kw))


@compiles(indexed_date_trunc, "mysql")
@compiles(indexed_date_trunc, "mariadb")
def _trunc_mysql(element: indexed_date_trunc, compiler: SQLCompiler, **kw: Any) -> str:
    unit, column = _parts(element)
    rendered = compiler.process(column, **kw)
    if _unit(unit) == "week":
        return f"CAST(DATE_SUB(DATE({rendered}), INTERVAL WEEKDAY({rendered}) DAY) AS DATETIME)"
    # The format goes through a bound literal: '%' must not meet the driver's paramstyle raw.
    fmt = compiler.process(literal(_MYSQL_TRUNC_FORMATS[_unit(unit)]), **kw)
    return f"CAST(DATE_FORMAT({rendered}, {fmt}) AS DATETIME)"


@compiles(indexed_tsrange)
def _tsrange_default(element: indexed_tsrange, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"range types exist only on PostgreSQL, not {compiler.dialect.name}")


@compiles(indexed_tsrange, "default")
def _tsrange_string(element: indexed_tsrange, compiler: SQLCompiler, **kw: Any) -> str:
    # str(statement) compiles with the "default" dialect: show the PostgreSQL spelling.
    return _tsrange_postgresql(element, compiler, **kw)


@compiles(indexed_tsrange, "postgresql")
def _tsrange_postgresql(element: indexed_tsrange, compiler: SQLCompiler, **kw: Any) -> str:
    start, end, bounds = _parts(element)
    function = "tstzrange" if is_timezone_aware(start.type) else "tsrange"
    return (
        f"{function}({compiler.process(start, **kw)}, {compiler.process(end, **kw)}, "
        f"{getattr(bounds, 'name', '')})"
    )
