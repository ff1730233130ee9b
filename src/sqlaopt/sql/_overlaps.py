"""``overlaps``: the half-open interval overlap predicate, in a form a B-tree index can serve."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, literal
from sqlalchemy.sql.elements import ClauseElement

from .._errors import SqlaoptError

__all__ = ["IntervalError", "overlaps"]

_T = TypeVar("_T")


class IntervalError(SqlaoptError, ValueError):
    """An interval given as Python values ends before it starts."""


def overlaps(
    start_col: SQLColumnExpression[_T],
    end_col: SQLColumnExpression[_T],
    start: _T | SQLColumnExpression[_T],
    end: _T | SQLColumnExpression[_T],
) -> ColumnElement[bool]:
    """True where the row's interval ``[start_col, end_col)`` overlaps ``[start, end)``.

    Renders ``start_col < end AND end_col > start``. Both intervals are half-open, so
    back-to-back intervals (one ends exactly when the other starts) do not overlap, and a
    zero-length interval ``[t, t)`` overlaps only intervals that contain ``t`` strictly inside.
    Unlike SQL's ``(a, b) OVERLAPS (x, y)`` it never swaps reversed endpoints and gives an
    instant no special treatment; and because it is two plain range comparisons, an index on
    ``(..., start_col, ...)`` can seek on ``start_col < end`` (PostgreSQL puts OVERLAPS in a
    Filter instead).

    ``start`` and ``end`` may be Python values or SQL expressions. When both are Python values
    and ``end < start`` this raises :class:`IntervalError` (a :class:`ValueError`): a reversed
    interval is a bug in the caller, and the predicate would silently match rows that contain
    ``[end, start]``.
    """
    if not _is_sql(start) and not _is_sql(end) and end < start:  # type: ignore[operator]
        raise IntervalError(f"interval ends before it starts: [{start!r}, {end!r})")
    return and_(_expression(start_col) < end, _expression(end_col) > start)


def _is_sql(value: object) -> bool:
    return isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")


def _expression(value: SQLColumnExpression[_T]) -> ColumnElement[Any]:
    """The column as a ColumnElement, so its comparison operators are typed."""
    if isinstance(value, ColumnElement):
        return value
    element: Any = value.__clause_element__() if hasattr(value, "__clause_element__") else value
    if isinstance(element, ColumnElement):
        return element
    return literal(element)
