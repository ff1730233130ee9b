"""Calendar-month arithmetic and the live partitions of a table (PostgreSQL catalogs)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

__all__ = ["Partition", "add_months", "live_partitions", "month_of", "month_range"]

_BOUNDS = re.compile(r"FROM \('(\d{4}-\d{2}-\d{2})[^']*'\) TO \('(\d{4}-\d{2}-\d{2})[^']*'\)")


def month_of(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return dt.date(day.year, day.month, 1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month ``count`` months after ``month``'s (before, if negative)."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of every month from ``first``'s to ``last``'s, both included."""
    months, month = [], month_of(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned table: ``[start, end)``; both None for the default."""

    name: str
    start: dt.date | None
    end: dt.date | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def live_partitions(conn: Connection, parent: str) -> list[Partition]:
    """The partitions attached to ``parent`` (a regclass name), ordered by start, the default
    partition last; empty when ``parent`` is missing or not partitioned."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:parent)"
        ),
        {"parent": parent},
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUNDS.search(bound or "")
        if match:
            start, end = (dt.date.fromisoformat(g) for g in match.groups())
            found.append(Partition(name, start, end))
        elif bound == "DEFAULT":
            found.append(Partition(name, None, None))
    return sorted(found, key=lambda p: (p.start is None, p.start or dt.date.min))
